//! Start-up and compile time, issue 15's last goals of `--jit`: `mini run` of an empty program
//! against an empty C program (median of many runs, as one start-up is about a millisecond;
//! the difference is the median of the differences of starts in the same turn),
//! and the compile time of each function that `mini run --jit --stats` reports for the examples
//! of the main table (at their small size, with the benchmark's cache warm, as the `mini --jit`
//! column runs them).

use super::{MINI, SIZES, built_c, c_binary_dir, example_path, median, print_aligned, root, run_once};
use std::fs;
use std::process::{Command, Stdio};

/// `mini run` of an empty program may take at most this many ms more than an empty C program.
const STARTUP_GOAL_MS: f64 = 0.3;

/// A function may take at most this many ms to compile, as `--stats` reports it.
const COMPILE_GOAL_MS: f64 = 1.0;

/// How many times each program is started per run of the benchmark.
const STARTS_PER_RUN: usize = 20;

/// The empty C program (its source is written into `bench-c/` and compiled there).
const EMPTY_C: &str = "/* written by benches/run/startup.rs */\nint main(void) { return 0; }\n";

/// Times the start of an empty program: C, `mini run`, `mini run --jit`, taking turns; prints
/// their medians and the start-up goal.
pub fn print_startup(runs: usize) {
    let Some(c) = built_c("empty", EMPTY_C) else { return };
    let program = c_binary_dir().join("empty.mini");
    if fs::write(&program, "").is_err() {
        eprintln!("warning: cannot write {}", program.display());
        return;
    }
    let commands: [(&str, Vec<String>); 3] = [
        ("empty C program", vec![c.display().to_string()]),
        ("mini run", vec![MINI.into(), "run".into(), program.display().to_string()]),
        ("mini run --jit", vec![MINI.into(), "run".into(), "--jit".into(), program.display().to_string()]),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); commands.len()];
    for _ in 0..runs * STARTS_PER_RUN {
        for ((_, argv), t) in commands.iter().zip(&mut times) {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            match run_once(cmd) {
                Ok(run) => t.push(run.secs * 1e3),
                Err(e) => {
                    eprintln!("warning: {} failed: {e}", argv.join(" "));
                    return;
                }
            }
        }
    }
    // "above C": the median of the differences between starts taken in the same turn, steadier
    // than the difference of the medians on a machine whose speed drifts
    let above_c = |t: &[f64]| median(&t.iter().zip(&times[0]).map(|(x, c)| x - c).collect::<Vec<_>>());
    let mut table = vec![vec!["program".to_owned(), "median".to_owned(), "above C".to_owned()]];
    for ((name, _), t) in commands.iter().zip(&times) {
        table.push(vec![name.to_string(), format!("{:.3} ms", median(t)), format!("{:+.3} ms", above_c(t))]);
    }
    println!("\nstart-up: an empty program, median of {} starts each (taking turns)", runs * STARTS_PER_RUN);
    print_aligned(&table);
    let above = above_c(&times[1]);
    let verdict = if above <= STARTUP_GOAL_MS { "met" } else { "not met" };
    println!(
        "goal: `mini run` of an empty program at most {STARTUP_GOAL_MS} ms above an empty C program's: {above:+.3} ms, {verdict}"
    );
}

/// The functions `mini run --jit --stats` compiled, with their compile time in ms, from its
/// report (`compiled NAME(TYPES) -> TYPE in X ms`).
fn compile_times(stats: &str) -> Vec<(String, f64)> {
    stats
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("compiled ")?;
            let (name, rest) = rest.split_once(" in ")?;
            let ms = rest.split_once(" ms")?.0.parse().ok()?;
            Some((name.to_owned(), ms))
        })
        .collect()
}

/// Runs each example of the main table under `mini run --jit --stats` at its small size and
/// prints its slowest compile (warm cache: a first run fills it when it is empty), against the
/// compile-time goal.
pub fn print_compile_times(selects: impl Fn(&str) -> bool) {
    let mut table = vec![vec!["example".to_owned(), "functions".to_owned(), "slowest compile".to_owned()]];
    let mut worst: Option<(f64, String)> = None;
    for (example, small, _) in SIZES.iter().filter(|(e, ..)| selects(e)) {
        let stats = || {
            Command::new(MINI)
                .args(["run", "--jit", "--stats"])
                .arg(example_path(example))
                .args(["--", small])
                .current_dir(root())
                .stdin(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        };
        let Some(report) = stats().and_then(|_| stats()) else {
            eprintln!("warning: mini run --jit --stats {example} failed");
            continue;
        };
        let times = compile_times(&report);
        let Some((name, ms)) = times.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else { continue };
        table.push(vec![format!("{example} {small}"), times.len().to_string(), format!("{ms:.3} ms ({name})")]);
        if worst.as_ref().is_none_or(|(w, _)| ms > w) {
            worst = Some((*ms, name.clone()));
        }
    }
    let Some((ms, name)) = worst else { return };
    println!("\ncompile time per function (`mini run --jit --stats`, cache warm)");
    print_aligned(&table);
    let verdict = if ms <= COMPILE_GOAL_MS { "met" } else { "not met" };
    println!("goal: every function compiled in at most {COMPILE_GOAL_MS} ms: {ms:.3} ms ({name}), {verdict}");
}
