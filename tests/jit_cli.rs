//! The JIT's command-line surface: `--stats` per-function reports (specializations, refusals with
//! their reasons and lines, invalidation), `--dump-ir`, `mini check --jit-report`, and the usage
//! errors of the JIT options. (What programs compute under `--jit` is tested by tests/programs.rs
//! in three modes and by tests/differential.rs.)

mod common;

use common::{ScratchFile, assert_ran, mini_command, text};
use std::process::Output;

/// Runs `mini` with `args`, where the word `FILE` stands for a scratch file holding `program`;
/// every compiled program is also checked by the bytecode verifier.
fn mini(args: &[&str], program: &str) -> Output {
    let file = ScratchFile::new("prog.mini", program);
    mini_command(args, file.path()).env("MINI_VERIFY_BYTECODE", "1").output().expect("run mini")
}

const PROGRAM: &str = "\
fn work(lo, hi) {
    let s = 0
    for i in range(lo, hi) { s += i % 7 }
    return s
}
fn half(x) {
    let y = x
    if x > 1 { y = x / 2 }
    return y
}
fn collect(n, xs) {
    for i in range(n) { push(xs, i) }
    return len(xs)
}
let scale = 3
fn scaled(x) { return x * scale }
print(work(0, 100), work(5, 10))
print(half(1), half(3), half(3.0))
print(collect(3, []))
print(scaled(2))
scale = 4.0
print(scaled(2))
";

#[test]
fn stats_report_specializations_refusals_and_invalidation() {
    let err = assert_ran(
        &mini(&["run", "--jit", "--jit-threshold", "0", "--stats", "FILE"], PROGRAM),
        "295 14\n1 1.5 1.5\n3\n6\n8.0\n",
    );
    assert!(err.contains("jit: per function (--jit-threshold 0)"), "{err}");
    assert!(err.contains("compiled work(int, int) -> int in "), "{err}");
    // an int on one path and a float on the other: compiled, returning either (lang-spec/jit.md)
    assert!(err.contains("compiled half(int) -> int or float in "), "{err}");
    assert!(err.contains("compiled half(float) -> float in "), "{err}");
    assert!(
        err.contains(
            "cannot compile collect(int, list): line 12:25: push(xs, i): push() works on lists and dicts, which \
             compiled code does not have"
        ),
        "{err}"
    );
    assert!(err.contains("compiled scaled(int) -> int in "), "{err}");
    assert!(err.contains("(invalidated: a global it read was assigned)"), "{err}");
    assert!(!err.contains("<main>"), "the main program is never offered to the JIT:\n{err}");
    let scaled_specs = err.matches("compiled scaled(int) -> ").count();
    // an assignment that changes the global's type invalidates (one of the same type would not:
    // compiled code reads an assigned global from memory, lang-spec/jit.md)
    assert_eq!(scaled_specs, 2, "recompiled after the assignment:\n{err}");
}

#[test]
fn stats_without_jit_have_no_jit_report() {
    let out = mini(&["run", "--stats", "FILE"], PROGRAM);
    assert!(out.status.success());
    assert!(!text(&out.stderr).contains("jit:"));
}

#[test]
fn dump_ir_prints_cranelift_ir_and_machine_code() {
    let program = "fn f(n) { let s = 0.0\n for i in range(n) { s += sqrt(i) }\n return s }\nprint(f(4))\n";
    let err = assert_ran(&mini(&["run", "--jit", "--dump-ir", "FILE"], program), "4.146264369941973\n");
    assert!(err.contains("; f(int) ("), "{err}");
    assert!(err.contains("function u0:"), "{err}");
    assert!(err.contains(" = sqrt v"), "{err}");
    assert!(err.contains("; machine code:"), "{err}");
}

#[test]
fn check_jit_report_lists_signatures() {
    let out = mini(&["check", "--jit-report", "FILE"], PROGRAM);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("work (line 1):"), "{report}");
    assert!(report.contains("work(int, int): compiles, returns int"), "{report}");
    assert!(
        report.contains(
            "work(float, int), work(int, float), work(float, float): cannot compile: line 3:14: range(lo, hi): \
             range() of a float is an error"
        ),
        "{report}"
    );
    assert!(report.contains("half(int): compiles, returns int or float"), "{report}");
    assert!(report.contains("half(float): compiles, returns float"), "{report}");
    assert!(report.contains("scaled(int): compiles, returns int"), "{report}");
    assert!(report.contains("scaled(float): compiles, returns float"), "{report}");
    assert!(!report.contains("print"), "builtins are not reported:\n{report}");
}

#[test]
fn jit_options_need_jit() {
    for flag in [&["--keep-gil"][..], &["--dump-ir"], &["--jit-threshold", "5"]] {
        let mut args = vec!["run"];
        args.extend_from_slice(flag);
        args.push("FILE");
        let out = mini(&args, "print(1)\n");
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {}", text(&out.stderr));
    }
    let out = mini(&["run", "--jit", "--jit-threshold", "-1", "FILE"], "print(1)\n");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn keep_gil_gives_the_same_results() {
    let program = "fn work(n) { let s = 0\n for i in range(n) { s += i }\n return s }\n\
                   let t = spawn(work, 1000)\nprint(work(2000), join(t))\n";
    for mode in [&["run", "FILE"][..], &["run", "--jit", "FILE"], &["run", "--jit", "--keep-gil", "FILE"]] {
        let out = mini(mode, program);
        assert_eq!(text(&out.stdout), "1999000 499500\n", "{mode:?}");
    }
}

/// Kernels with a labelled print, a `for` over an array parameter and an f-string (issue 10's
/// example).
const CONSTRUCTS: &str = "\
fn k(a, n) {
  let s = 0.0
  for i in range(n) { s += a[i] }
  print(\"first\", s)
  return s
}
fn k2(a) {
  let s = 0.0
  for v in a { s += v }
  return s
}
fn k3(a) {
  let s = f\"{a[0]:.2f}\"
  return s
}
fn k4(a) {
  return len(a) * 2
}
let a = array(10, 1.0)
print(k(a, 10))
print(k2(a))
print(k3(a))
print(k4(a))
";

#[test]
fn jit_report_names_the_construct_and_lists_what_compiles() {
    let out = mini(&["check", "--jit-report", "FILE"], CONSTRUCTS);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let expected = "\
k (line 1):
  k(float array, int), k(int array, int): cannot compile: line 4:3: print(\"first\", s): compiled code does not \
print; print the function's result in its caller
  k(float array, float), k(int array, float): cannot compile: line 3:12: range(n): range() of a float is an error \
(range() needs ints)
k2 (line 7):
  k2(float array), k2(int array): compiles, returns float
k3 (line 12):
  k3(float array), k3(int array): cannot compile: line 13:14: an f-string builds a string, which compiled code \
cannot do
k4 (line 16):
  k4(float array), k4(int array): compiles, returns int
";
    assert_eq!(report, expected);
}

#[test]
fn stats_name_the_construct_and_iteration_over_a_number() {
    let program = format!("{CONSTRUCTS}print(k2(5))\n");
    let out = mini(&["run", "--jit", "--jit-threshold", "0", "--stats", "FILE"], &program);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "first 10.0\n10.0\n10.0\n1.00\n20\n");
    let err = text(&out.stderr);
    for line in [
        "cannot compile k(float array, int): line 4:3: print(\"first\", s): compiled code does not print",
        "compiled k2(float array) -> float",
        "cannot compile k2(int): line 9:12: a: iterating over an int is an error (cannot iterate over int)",
        "cannot compile k3(float array): line 13:14: an f-string builds a string, which compiled code cannot do",
        "compiled k4(float array) -> int",
    ] {
        assert!(err.contains(line), "{line}\n{err}");
    }
    assert!(err.contains("error: cannot iterate over int"), "{err}");
}

/// A program whose function `f` runs a loop of `statements` statements, each mixing int
/// arithmetic, an array load and store, a comparison and a call of a small function.
fn long_loop(statements: usize) -> String {
    let mut p = String::from("fn g(x) { return x % 1000 + 1 }\nfn f(n, a) {\n    let s = 0\n    for i in range(n) {\n");
    for k in 0..statements {
        let line = match k % 4 {
            0 => format!("        s = s + i * {}\n", k % 7 + 1),
            1 => format!("        a[i] = a[i] + {k}.0\n"),
            2 => format!("        if s > {k} {{ s = s - {k} }}\n"),
            _ => "        s = g(s)\n".to_string(),
        };
        p.push_str(&line);
    }
    p.push_str("    }\n    return s\n}\nprint(f(3, array(3, 0.0)))\n");
    p
}

/// The `--stats` lines about `f`'s specializations and refusals.
fn f_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(" f(int, float array)")).collect()
}

#[test]
fn a_long_function_compiles_and_a_too_long_one_is_refused_with_the_reason() {
    // 900 statements (about 3,000 instructions): compiled (in time linear in its size)
    let out = mini(&["run", "--jit", "--stats", "FILE"], &long_loop(900));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let lines = f_lines(&stderr);
    assert!(lines.len() == 1 && lines[0].contains("compiled f(int, float array) -> int in "), "{stderr}");
    // 8,000 statements (about 26,000 instructions; 30 s to compile before the size limit)
    let big = long_loop(8000);
    let out = mini(&["run", "--jit", "--stats", "FILE"], &big);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let lines = f_lines(&stderr);
    assert!(
        lines.len() == 1
            && lines[0].contains("cannot compile f(int, float array): the function is too large to compile (")
            && lines[0].contains("instructions, at most 4000)"),
        "{stderr}"
    );
    // refused, it runs interpreted and prints what the interpreter prints
    let interp = mini(&["run", "FILE"], &big);
    assert_eq!(text(&out.stdout), text(&interp.stdout));
}

/// The `(K kept the GIL, R released it; mean M us)` counts of the `--stats` line of the
/// specialization `sig` (such as `tiny(int) -> int`), checking that they add up to its native
/// calls.
fn gil_counts(stderr: &str, sig: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("compiled {sig} in ")))
        .unwrap_or_else(|| panic!("no line for {sig}:\n{stderr}"));
    let number = |before: &str| -> u64 {
        let head = line.split(before).next().expect("split");
        let digits = head.rsplit(|c: char| !c.is_ascii_digit()).next().expect("digits");
        digits.parse().unwrap_or_else(|_| panic!("no count before {before:?} in {line}"))
    };
    let (calls, kept, released) = (number(" native calls"), number(" kept the GIL"), number(" released it"));
    assert_eq!(kept + released, calls, "{line}");
    assert!(line.contains(" us)"), "the mean call time is reported: {line}");
    (kept, released)
}

#[test]
fn tiny_native_calls_from_two_threads_keep_the_gil() {
    // the interpreted loops (a list keeps `run` interpreted) call `tiny` 2 x 100,000 times: were
    // each call to release the GIL, the threads would hand it back and forth at every call
    // (`tiny` is a few instructions long: a function of one would be interpreted after its
    // first native calls, see `trivial_functions_are_interpreted_after_their_first_native_calls`)
    let program = "\
fn tiny(x) {
    let y = x * 3
    return y - 2 * x + 1
}
fn run(n) {
    let box = [0]
    for i in range(n) { box[0] = tiny(box[0]) }
    return box[0]
}
let t1 = spawn(run, 100000)
let t2 = spawn(run, 100000)
print(join(t1) + join(t2))
";
    let stderr = assert_ran(&mini(&["run", "--jit", "--stats", "FILE"], program), "200000\n");
    let (kept, released) = gil_counts(&stderr, "tiny(int) -> int");
    // (a timed call that the OS happens to interrupt may make a few calls release it)
    assert!(kept >= 190_000, "most calls keep the GIL:\n{stderr}");
    assert!(released < 10_000, "{stderr}");
    // --keep-gil keeps it across every call
    let out = mini(&["run", "--jit", "--keep-gil", "--stats", "FILE"], program);
    let stderr = text(&out.stderr);
    assert_eq!(gil_counts(&stderr, "tiny(int) -> int").1, 0, "{stderr}");
}

#[test]
fn trivial_functions_are_interpreted_after_their_first_native_calls() {
    // entering native code costs more than interpreting `x + 1`: after 64 native calls the
    // interpreter runs the calls itself, and the report says so; a compiled caller still runs it
    let program = "\
fn inc(x) { return x + 1 }
fn twice(x) { return inc(inc(x)) }
let s = 0
for i in range(1000) { s = inc(s) }
print(s, twice(1))
";
    let stderr = assert_ran(&mini(&["run", "--jit", "--jit-threshold", "0", "--stats", "FILE"], program), "1000 3\n");
    assert_eq!(gil_counts(&stderr, "inc(int) -> int"), (63, 1), "the first call releases the GIL: {stderr}");
    assert!(stderr.contains("    interpreted after 64 native calls: too short to gain from native code"), "{stderr}");
    let twice = stderr.lines().find(|l| l.contains("compiled twice(int)")).expect("twice compiled");
    assert!(twice.contains(" 1 native calls"), "{twice}");
}

#[test]
fn long_native_calls_release_the_gil_even_after_short_ones() {
    // `work` is first called 100 times with tiny work (those calls keep the GIL), then 2 x 300
    // times from two threads with work of tens of microseconds: re-measured, it releases the GIL
    let program = "\
fn work(n) {
    let s = 0
    for i in range(n) { s = (s * 31 + i) % 1000003 }
    return s
}
fn many(calls, n) {
    let box = [0]
    for c in range(calls) { box[0] += work(n) }
    return box[0]
}
print(many(100, 2))
let t1 = spawn(many, 300, 30000)
let t2 = spawn(many, 300, 30000)
print(join(t1) == join(t2))
";
    let stderr = assert_ran(&mini(&["run", "--jit", "--stats", "FILE"], program), "100\ntrue\n");
    let (kept, released) = gil_counts(&stderr, "work(int) -> int");
    assert!(kept >= 50, "the short calls keep the GIL:\n{stderr}");
    // after at most 256 calls one of the long ones is timed, and from then on they release it
    assert!(released >= 300, "the long calls release the GIL:\n{stderr}");
}

#[test]
fn a_pair_of_long_running_compiled_workers_release_the_gil() {
    // each worker is one native call of some milliseconds, started in its own thread
    let program = "\
fn work(lo, hi) {
    let s = 0
    for i in range(lo, hi) { s = (s + i * i) % 1000003 }
    return s
}
let t1 = spawn(work, 0, 3000000)
let t2 = spawn(work, 3000000, 6000000)
print(join(t1) >= 0, join(t2) >= 0)
";
    let stderr = assert_ran(&mini(&["run", "--jit", "--stats", "FILE"], program), "true true\n");
    assert_eq!(gil_counts(&stderr, "work(int, int) -> int"), (0, 2), "{stderr}");
}
