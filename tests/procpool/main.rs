//! `pmap(..., "processes")` as a user sees it from outside a program: Ctrl-C ending the caller
//! while its workers run forever (no worker left behind), a million items through two workers
//! against a plain loop (the cost per item shown with --nocapture; `cargo bench -- processes`
//! reports it), and (ignored by default: it needs two idle cores) the speedup of two workers on
//! compiled code. The `.mini` programs of this folder are
//! run by `programs.rs`.

#[path = "../common/mod.rs"]
mod common;

use common::{mini_on, text};
use std::process::Output;
use std::time::{Duration, Instant};

/// Runs `mini run <flags> <program>` to the end.
fn run(flags: &[&str], program: &str) -> Output {
    mini_on(&[&["run"], flags, &["FILE"]].concat(), program)
}

/// The processes whose command line mentions `name` (a scratch program's file name).
#[cfg(target_os = "linux")]
fn processes_running(name: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if text(&cmdline).contains(name) {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

/// Workers that never end: Ctrl-C makes the caller raise `interrupted` at the `pmap` call
/// within the usual time, and no worker process is left once it has ended.
#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_ends_the_caller_and_kills_the_workers() {
    let program = "fn spin(x) {\n\
                   \x20   while true { x = (x + 1) % 7 }\n\
                   }\n\
                   print(\"started\")\n\
                   pmap(spin, [1, 2, 3], 2, \"processes\")\n";
    for flags in [&[][..], &["--jit"][..]] {
        let name = if flags.is_empty() { "procpool_ctrl_c_interp" } else { "procpool_ctrl_c_jit" };
        let out = common::interrupted_promptly(name, flags, program);
        common::assert_interrupted(name, &out, common::At::OneOf(&[":5:1\n"]));
        // the workers were killed and reaped before the caller reported
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut left = processes_running(&format!("{name}.mini"));
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            left = processes_running(&format!("{name}.mini"));
        }
        assert!(left.is_empty(), "{flags:?}: processes left running: {left:?}");
    }
}

/// A program timing a plain loop against process `pmap` with 2 workers over the same trivial
/// function and a million items, best of 3; prints the extra microseconds per item of `pmap`.
const OVERHEAD: &str = "fn inc(x) { return x + 1 }\n\
    let n = 1000000\n\
    let best = [1e9, 1e9]\n\
    for rep in range(3) {\n\
    \x20   let t0 = clock()\n\
    \x20   let r = []\n\
    \x20   for x in range(n) { push(r, inc(x)) }\n\
    \x20   best[0] = min(best[0], clock() - t0)\n\
    \x20   t0 = clock()\n\
    \x20   let r2 = pmap(inc, range(n), 2, \"processes\")\n\
    \x20   best[1] = min(best[1], clock() - t0)\n\
    \x20   assert(r == r2)\n\
    }\n\
    print(best[0], best[1], (best[1] - best[0]) * 1e6 / n)\n";

/// A million items through two worker processes give the loop's results. The cost per item is
/// shown with --nocapture, not asserted (no timing assertions in tests: `cargo bench --
/// processes` reports it).
#[test]
fn a_million_items_through_worker_processes_give_the_loops_results() {
    for flags in [&[][..], &["--jit"][..]] {
        let out = run(flags, OVERHEAD);
        let stdout = text(&out.stdout);
        let words: Vec<f64> = stdout.split_whitespace().map(|w| w.parse().expect("a float")).collect();
        assert_eq!(words.len(), 3, "{flags:?}: {stdout} {}", text(&out.stderr));
        eprintln!(
            "{flags:?}: loop {} s, pmap(inc, range(1000000), 2, \"processes\") {} s: {} us per item over the loop",
            words[0], words[1], words[2]
        );
    }
}

/// Two compiled calls of about half a second each: with 2 worker processes they take at most
/// 0.55 of the time they take with 1 (at least 1.8 times faster). Needs two idle cores, so it
/// is ignored by default: `cargo test --release --test procpool -- --ignored`.
#[test]
#[ignore]
fn two_worker_processes_run_compiled_calls_1_8_times_faster() {
    let program = "fn kern(part) {\n\
                   \x20   let s = 0.0\n\
                   \x20   for i in range(part * 200000000, (part + 1) * 200000000) { s += sqrt(i) }\n\
                   \x20   return s\n\
                   }\n\
                   let t0 = clock()\n\
                   let r1 = pmap(kern, [0, 1], 1, \"processes\")\n\
                   let t1 = clock() - t0\n\
                   t0 = clock()\n\
                   let r2 = pmap(kern, [0, 1], 2, \"processes\")\n\
                   let t2 = clock() - t0\n\
                   print(r1 == r2, t1, t2, t2 / t1)\n";
    let out = run(&["--jit"], program);
    let stdout = text(&out.stdout);
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"true"), "{stdout} {}", text(&out.stderr));
    let ratio: f64 = words[3].parse().expect("a float");
    eprintln!("1 worker {} s, 2 workers {} s: ratio {ratio}", words[1], words[2]);
    assert!(ratio <= 0.556, "2 workers took {ratio} of the 1-worker time: {stdout}");
}
