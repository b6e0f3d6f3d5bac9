//! The program test harness: runs every `.mini` file under `tests/` and every ```mini example in
//! `lang-spec/` with the `mini` binary, in every execution mode, and checks the `# expect:`,
//! `# expect-error:`, `# args:`, `# jit-compiles:` and `# jit-refuses:` annotations. All
//! mismatches are reported, then it fails.
//!
//! Every mode must also give exactly the output (stdout, stderr, exit code) of the first mode,
//! the interpreter: the JIT never changes what a program does.
//!
//! The oracle proves that the JIT ran. When the eager mode (`--jit --jit-threshold 0`) is among
//! the modes, each program runs once more in that mode with `--stats`; that run must print what
//! the first mode printed (its stderr followed by the statistics), and its per-function JIT report
//! is checked against the program's JIT directives:
//!
//! - `# jit-compiles: SIG` (one signature per line, written as `--stats` writes it, such as
//!   `f(int, float array)`): the report lists SIG as compiled, and its specializations made at
//!   least one native call (were entered from the interpreter). `# jit-compiles: SIG (not called)`
//!   says that SIG is compiled but never entered from the interpreter (a callee compiled with its
//!   caller, whose own calls have other signatures). A program with these lines lists every
//!   signature the report shows compiled: a compiled signature it does not list fails too.
//! - `# jit-compiles: nothing`: the report shows no compiled signature (a program about
//!   refusals).
//! - `# jit-refuses: TEXT`: some `cannot compile ...` line of the report starts with TEXT (a
//!   signature, optionally followed by `: line N: reason`).
//! - `# jit-stats: TEXT`: the eager run's `--stats` report contains TEXT (such as a `prange`
//!   loop's `parallel on 2 threads`).
//!
//! Every program in `tests/jit/` must state what it compiles. The report lists only functions
//! called from interpreted code; a callee compiled into its caller and never called from the
//! interpreter does not appear. The summary counts the programs whose eager run entered native
//! code, and the full suite fails when that share of the `tests/` programs falls below
//! [`MIN_NATIVE_SHARE`]: a JIT that refused everything would not pass.
//!
//! Every run has `MINI_JIT_VERIFY=1` (Cranelift's verifier on every compiled function) and
//! `MINI_VERIFY_BYTECODE=1` (the bytecode verifier on every compiled function) in its environment.
//!
//! `cargo test --test programs -- FILTER` runs only paths containing FILTER;
//! `MINI_TEST_MODES=interp` restricts the modes.

mod common;

use common::{MODES, collect_mini_files, text};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Per-mode skips: (mode, path substring, reason). Empty: every program runs in every mode.
const SKIPS: &[(&str, &str, &str)] = &[];

const TIMEOUT: Duration = Duration::from_secs(120);

/// The mode whose extra `--stats` run is checked against the JIT directives.
const EAGER: &str = "eager";

/// The least share of the `tests/` programs whose eager run must enter native code (checked
/// when the whole suite runs with the eager mode).
const MIN_NATIVE_SHARE: f64 = 0.60;

/// What a program expects.
#[derive(Debug, Default)]
struct Expectation {
    stdout: Vec<String>,
    error: Option<(usize, String)>,
    args: Vec<String>,
    jit: JitClaims,
}

/// What a program says the eager mode compiles (`# jit-compiles:`, `# jit-refuses:`).
#[derive(Debug, Default)]
struct JitClaims {
    /// Each signature listed, with whether its specializations must have been entered natively.
    compiles: Vec<(String, bool)>,
    /// `# jit-compiles: nothing`.
    nothing: bool,
    /// Prefixes of `cannot compile` lines that must appear.
    refuses: Vec<String>,
    /// Texts the `--stats` report must contain.
    stats: Vec<String>,
}

impl JitClaims {
    /// Whether the program states what it compiles.
    fn stated(&self) -> bool {
        self.nothing || !self.compiles.is_empty()
    }
}

struct Case {
    name: String,
    path: PathBuf,
    expect: Expectation,
}

fn parse_expectations(text: &str) -> Expectation {
    let mut e = Expectation::default();
    for (i, line) in text.lines().enumerate() {
        if let Some(pos) = line.find("# expect: ") {
            e.stdout.push(line[pos + "# expect: ".len()..].to_string());
        } else if let Some(pos) = line.find("# expect:") {
            e.stdout.push(line[pos + "# expect:".len()..].trim_start().to_string());
        } else if let Some(pos) = line.find("# expect-error line ") {
            let rest = &line[pos + "# expect-error line ".len()..];
            let (num, msg) = rest.split_once(':').expect("`# expect-error line N: message`");
            e.error = Some((num.trim().parse().expect("a line number"), msg.trim().to_string()));
        } else if let Some(pos) = line.find("# expect-error:") {
            e.error = Some((i + 1, line[pos + "# expect-error:".len()..].trim().to_string()));
        } else if let Some(pos) = line.find("# args:") {
            e.args = line[pos + "# args:".len()..].split_whitespace().map(String::from).collect();
        } else if let Some(pos) = line.find("# jit-compiles:") {
            parse_compiles(line[pos + "# jit-compiles:".len()..].trim(), &mut e.jit);
        } else if let Some(pos) = line.find("# jit-refuses:") {
            e.jit.refuses.push(line[pos + "# jit-refuses:".len()..].trim().to_string());
        } else if let Some(pos) = line.find("# jit-stats:") {
            e.jit.stats.push(line[pos + "# jit-stats:".len()..].trim().to_string());
        }
    }
    e
}

/// One `# jit-compiles:` value: `nothing`, `SIG` or `SIG (not called)`.
fn parse_compiles(value: &str, claims: &mut JitClaims) {
    if value == "nothing" {
        claims.nothing = true;
    } else if let Some(sig) = value.strip_suffix("(not called)") {
        claims.compiles.push((sig.trim().to_string(), false));
    } else {
        claims.compiles.push((value.to_string(), true));
    }
}

/// Writes each ```mini block of the spec that carries expectations to its own file.
fn spec_examples(root: &Path, scratch: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut chapters = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join("lang-spec")) {
        chapters.extend(entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "md")));
    }
    chapters.sort();
    std::fs::create_dir_all(scratch).expect("scratch directory");
    for chapter in chapters {
        let text = std::fs::read_to_string(&chapter).expect("readable chapter");
        let stem = chapter.file_stem().unwrap().to_string_lossy().to_string();
        for (n, block) in mini_blocks(&text).into_iter().enumerate() {
            if !block.contains("# expect") {
                continue;
            }
            let path = scratch.join(format!("{stem}-{}.mini", n + 1));
            std::fs::write(&path, &block).expect("write example");
            let name = format!("lang-spec/{stem}.md example {}", n + 1);
            cases.push(Case { name, expect: parse_expectations(&block), path });
        }
    }
    cases
}

fn mini_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```mini") => current = Some(String::new()),
            Some(_) if line.trim_start().starts_with("```") => blocks.push(current.take().unwrap()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

struct Outcome {
    stdout: String,
    stderr: String,
    code: Option<i32>,
    timed_out: bool,
}

fn run_mini(path: &Path, flags: &[&str], args: &[String]) -> Outcome {
    let mut cmd = common::mini_cmd();
    // Cranelift's verifier checks every function compiled; an internal error shows on stderr
    cmd.env("MINI_JIT_VERIFY", "1");
    // So does the bytecode verifier, on every function the compiler makes
    cmd.env("MINI_VERIFY_BYTECODE", "1");
    cmd.arg("run").args(flags).arg(path);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start mini");
    let finished = common::finish(child, TIMEOUT);
    let out = finished.output;
    Outcome {
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
        code: out.status.code(),
        timed_out: finished.timed_out,
    }
}

/// The line of the `--> file:line:col` header of an error report.
fn reported_line(stderr: &str) -> Option<usize> {
    let header = stderr.lines().find(|l| l.trim_start().starts_with("--> "))?;
    let location = header.trim_start().trim_start_matches("--> ");
    let mut parts = location.rsplitn(3, ':');
    let _col = parts.next()?;
    parts.next()?.parse().ok()
}

/// Compares one run with its expectation; returns the problems found.
fn check(case: &Case, out: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if out.timed_out {
        problems.push(format!("timed out after {TIMEOUT:?}"));
        return problems;
    }
    let got: Vec<&str> = out.stdout.lines().collect();
    if got != case.expect.stdout.iter().map(String::as_str).collect::<Vec<_>>() {
        problems.push(format!("stdout differs\n    expected: {:?}\n    got:      {:?}", case.expect.stdout, got));
    }
    match &case.expect.error {
        None if out.code != Some(0) => {
            problems.push(format!("exit code {:?}, stderr:\n{}", out.code, indent(&out.stderr)));
        }
        None => {}
        Some((line, msg)) => {
            let first = out.stderr.lines().next().unwrap_or("");
            if out.code != Some(1) {
                problems.push(format!("expected exit code 1, got {:?}", out.code));
            }
            if !first.starts_with("error: ") || !first.contains(msg.as_str()) {
                problems.push(format!("expected error containing {msg:?}, stderr:\n{}", indent(&out.stderr)));
            } else if reported_line(&out.stderr) != Some(*line) {
                problems.push(format!(
                    "expected the error at line {line}, reported at {:?}:\n{}",
                    reported_line(&out.stderr),
                    indent(&out.stderr)
                ));
            }
        }
    }
    problems
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      | {l}\n")).collect()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted_modes = std::env::var("MINI_TEST_MODES").ok();
    let mut files = Vec::new();
    collect_mini_files(&root.join("tests"), &mut files);
    // the thread, course, parallel and process examples carry their expectations too (the benchmarks in
    // `examples/` do not)
    collect_mini_files(&root.join("examples/threads"), &mut files);
    collect_mini_files(&root.join("examples/course"), &mut files);
    collect_mini_files(&root.join("examples/parallel"), &mut files);
    collect_mini_files(&root.join("examples/processes"), &mut files);
    files.sort();
    let mut cases: Vec<Case> = files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable test");
            let name = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
            Case { name, expect: parse_expectations(&text), path }
        })
        .collect();
    cases.extend(spec_examples(&root, &root.join("target/spec-examples")));
    cases.retain(|c| filter.as_ref().is_none_or(|f| c.name.contains(f.as_str())));
    let modes: Vec<&(&str, &[&str])> =
        MODES.iter().filter(|(m, _)| wanted_modes.as_ref().is_none_or(|w| w.split(',').any(|x| x == *m))).collect();

    let failures = Mutex::new(Vec::new());
    let runs = AtomicUsize::new(0);
    let native = NativeTally::default();
    cases.par_iter().for_each(|case| {
        let (problems, ran_native) = run_case(case, &modes, &runs);
        if let Some(ran) = ran_native {
            native.add(case.name.starts_with("tests/"), ran);
        }
        if !problems.is_empty() {
            failures.lock().unwrap().push(format!("FAIL {}\n  {}", case.name, problems.join("\n  ")));
        }
    });
    let mut failures = failures.into_inner().unwrap();
    let whole_suite = filter.is_none() && modes.iter().any(|(m, _)| *m == EAGER);
    if whole_suite && native.share() < MIN_NATIVE_SHARE {
        failures.push(format!("FAIL the JIT oracle: native code ran in less than {MIN_NATIVE_SHARE} of the programs"));
    }
    for f in &failures {
        println!("{f}\n");
    }
    println!(
        "{} programs x {} modes: {} runs, {} programs failed",
        cases.len(),
        modes.len(),
        runs.into_inner(),
        failures.len()
    );
    native.print();
    let _ = std::fs::remove_dir_all(common::test_cache_dir());
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

/// Runs one program in every mode (and once more in the eager mode with `--stats`); returns
/// the problems found and, when the eager mode ran, whether native code ran.
fn run_case(case: &Case, modes: &[&(&str, &[&str])], runs: &AtomicUsize) -> (Vec<String>, Option<bool>) {
    let mut problems = Vec::new();
    let mut first: Option<(&str, Outcome)> = None;
    let mut ran_native = None;
    for (mode, flags) in modes.iter().filter(|(m, _)| !skipped(m, &case.name)) {
        let out = run_mini(&case.path, flags, &case.expect.args);
        runs.fetch_add(1, Ordering::Relaxed);
        problems.extend(check(case, &out).into_iter().map(|p| format!("[{mode}] {p}")));
        if let Some((first_mode, reference)) = &first {
            problems.extend(differences(first_mode, reference, mode, &out));
        }
        if *mode == EAGER {
            let reference = first.as_ref().map_or(&out, |(_, o)| o);
            let stats_flags: Vec<&str> = flags.iter().copied().chain(["--stats"]).collect();
            let with_stats = run_mini(&case.path, &stats_flags, &case.expect.args);
            runs.fetch_add(1, Ordering::Relaxed);
            let (jit_problems, ran) = check_jit(case, reference, &with_stats);
            problems.extend(jit_problems.into_iter().map(|p| format!("[{EAGER} --stats] {p}")));
            ran_native = Some(ran);
        }
        if first.is_none() {
            first = Some((mode, out));
        }
    }
    (problems, ran_native)
}

/// How many programs entered native code in the eager mode, among the `tests/` programs and
/// among the examples (of the spec, of `examples/threads/`, `examples/course/`, `examples/parallel/` and `examples/processes/`).
#[derive(Default)]
struct NativeTally {
    tests: AtomicUsize,
    tests_native: AtomicUsize,
    spec: AtomicUsize,
    spec_native: AtomicUsize,
}

impl NativeTally {
    fn add(&self, in_tests: bool, ran_native: bool) {
        let (all, native) = if in_tests { (&self.tests, &self.tests_native) } else { (&self.spec, &self.spec_native) };
        all.fetch_add(1, Ordering::Relaxed);
        native.fetch_add(usize::from(ran_native), Ordering::Relaxed);
    }

    /// The share of the `tests/` programs that entered native code (1 when there are none).
    fn share(&self) -> f64 {
        let all = self.tests.load(Ordering::Relaxed);
        if all == 0 { 1.0 } else { self.tests_native.load(Ordering::Relaxed) as f64 / all as f64 }
    }

    fn print(&self) {
        let (all, spec) = (self.tests.load(Ordering::Relaxed), self.spec.load(Ordering::Relaxed));
        if all + spec == 0 {
            return;
        }
        let (native, spec_native) =
            (self.tests_native.load(Ordering::Relaxed), self.spec_native.load(Ordering::Relaxed));
        println!(
            "eager mode ran native code in {native} of {all} test programs ({:.1}%), {spec_native} of {spec} examples \
             (spec and examples/); {} of {} in all ({:.1}%)",
            self.share() * 100.0,
            native + spec_native,
            all + spec,
            (native + spec_native) as f64 * 100.0 / (all + spec).max(1) as f64
        );
    }
}

/// One compiled specialization in a `--stats` JIT report.
struct Compiled {
    sig: String,
    native_calls: u64,
}

/// The JIT part of a `--stats` report: the compiled specializations and the `cannot compile`
/// lines (without that prefix). `None` when the report is missing (the program did not run).
fn jit_report(stderr: &str) -> Option<(Vec<Compiled>, Vec<String>)> {
    let start = stderr.find("jit: per function (")?;
    let mut compiled = Vec::new();
    let mut refused = Vec::new();
    for line in stderr[start..].lines() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("compiled ") {
            compiled.push(parse_compiled(rest)?);
        } else if let Some(rest) = line.strip_prefix("cannot compile ") {
            refused.push(rest.to_string());
        }
    }
    Some((compiled, refused))
}

/// Parses `f(int, int) -> int in 0.735 ms[ (cached[, not lowered])], 1 native calls[
/// (invalidated: ...)]`.
fn parse_compiled(rest: &str) -> Option<Compiled> {
    let (sig, after) = rest.split_once(" -> ")?;
    let (_, calls) = after
        .split_once(" ms, ")
        .or_else(|| after.split_once(" ms (cached), "))
        .or_else(|| after.split_once(" ms (cached, not lowered), "))?;
    let native_calls = calls.split_once(" native calls")?.0.parse().ok()?;
    Some(Compiled { sig: sig.to_string(), native_calls })
}

/// Checks the eager `--stats` run: the same output as the reference run (stderr followed by the
/// statistics), and a JIT report that bears out the program's directives. Also returns whether
/// native code ran.
fn check_jit(case: &Case, reference: &Outcome, out: &Outcome) -> (Vec<String>, bool) {
    let mut problems = Vec::new();
    if out.timed_out {
        return (vec![format!("timed out after {TIMEOUT:?}")], false);
    }
    if out.stdout != reference.stdout || out.code != reference.code || !out.stderr.starts_with(&reference.stderr) {
        problems.push(format!("output differs from the run without --stats, stderr:\n{}", indent(&out.stderr)));
    }
    // A program that does not compile never runs, and has no report
    let (compiled, refused) = jit_report(&out.stderr).unwrap_or_default();
    let claims = &case.expect.jit;
    if case.name.starts_with("tests/jit/") && !claims.stated() {
        problems.push("a program in tests/jit/ must state `# jit-compiles: SIG` or `# jit-compiles: nothing`".into());
    }
    problems
        .extend(check_claims(claims, &compiled, &refused).into_iter().map(|p| format!("{p}\n{}", indent(&out.stderr))));
    for text in claims.stats.iter().filter(|t| !out.stderr.contains(t.as_str())) {
        problems.push(format!("`# jit-stats: {text}`, but the report does not say so\n{}", indent(&out.stderr)));
    }
    (problems, compiled.iter().any(|c| c.native_calls > 0))
}

/// Compares the directives with the report's compiled and refused signatures.
fn check_claims(claims: &JitClaims, compiled: &[Compiled], refused: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    if claims.nothing && !compiled.is_empty() {
        problems.push("`# jit-compiles: nothing`, but the JIT compiled something".to_string());
    }
    for (sig, entered) in &claims.compiles {
        let specs: Vec<&Compiled> = compiled.iter().filter(|c| c.sig == *sig).collect();
        let calls: u64 = specs.iter().map(|c| c.native_calls).sum();
        if specs.is_empty() {
            problems.push(format!("`# jit-compiles: {sig}`, but it was not compiled"));
        } else if *entered && calls == 0 {
            problems.push(format!("`# jit-compiles: {sig}` was compiled but made no native call"));
        } else if !*entered && calls > 0 {
            problems.push(format!("`# jit-compiles: {sig} (not called)` made {calls} native calls"));
        }
    }
    if !claims.compiles.is_empty() {
        for c in compiled.iter().filter(|c| !claims.compiles.iter().any(|(s, _)| *s == c.sig)) {
            problems.push(format!("compiled {}, which no `# jit-compiles:` line lists", c.sig));
        }
    }
    for prefix in &claims.refuses {
        if !refused.iter().any(|r| r.starts_with(prefix.as_str())) {
            problems.push(format!("`# jit-refuses: {prefix}`, but no refusal starts so"));
        }
    }
    problems.dedup();
    problems
}

/// Every mode must print exactly what the first mode printed, on stdout and stderr, and exit
/// the same way (the JIT never changes a program's behaviour).
fn differences(first_mode: &str, a: &Outcome, mode: &str, b: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    if a.stdout != b.stdout {
        problems.push(format!("[{mode}] stdout differs from [{first_mode}]:\n{}", indent(&b.stdout)));
    }
    if a.stderr != b.stderr {
        problems.push(format!(
            "[{mode}] stderr differs from [{first_mode}]:\n{}  [{first_mode}] stderr:\n{}",
            indent(&b.stderr),
            indent(&a.stderr)
        ));
    }
    if a.code != b.code {
        problems.push(format!("[{mode}] exit code {:?}, [{first_mode}] {:?}", b.code, a.code));
    }
    problems
}

fn skipped(mode: &str, name: &str) -> bool {
    SKIPS.iter().any(|(m, path, _reason)| *m == mode && name.contains(path))
}
