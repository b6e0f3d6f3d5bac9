//! `prange` as a user sees it from outside a program: results that depend neither on
//! `--threads` nor on the mode, the `--stats` section on prange loops
//! (each refused loop with its reason and the place of the construct that refused it, each
//! blocked loop with its runs, blocks, iterations and reductions) and `mini run --threads N`.
//! The `.mini` programs of this folder are run by `programs.rs`.

#[path = "../common/mod.rs"]
mod common;

use common::{mini_command, mini_on, text};
use std::path::Path;
use std::process::Output;

/// Runs `mini run <flags> <program>` to the end.
fn run(flags: &[&str], program: &str) -> Output {
    mini_on(&[&["run"], flags, &["FILE"]].concat(), program)
}

/// The lines of the `--stats` section on prange loops, without their `file:` prefix, with the
/// time of each blocked loop (`, 0.123 ms`) checked and replaced by `, T ms`.
fn prange_lines(stderr: &str) -> Vec<String> {
    let section = stderr.lines().skip_while(|l| *l != "prange loops:").skip(1);
    let line = |l: &str| {
        let l = l.split_once(".mini:").map_or(l, |(_, r)| r);
        match l.split_once(" iterations, ").or_else(|| l.split_once(" iteration, ")) {
            Some((head, tail)) => {
                let (ms, rest) = tail.split_once(" ms").expect("a time in ms");
                assert!(
                    ms.parse::<f64>().is_ok_and(|t| t >= 0.0) && ms.split_once('.').is_some_and(|(_, d)| d.len() == 3)
                );
                format!("{head} iterations, T ms{rest}")
            }
            None => l.to_string(),
        }
    };
    section.take_while(|l| l.starts_with("  ")).map(line).collect()
}

#[test]
fn stats_name_every_refused_loop_with_its_reason_and_place() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prange/races_refused.mini");
    let out = mini_command(&["run", "--stats", "FILE"], &path).output().expect("run mini");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let why = |loop_line: u32, reason: &str, at: &str| {
        format!("{loop_line}:9: refused: {reason} (line {at}); runs as range would")
    };
    let expected = [
        why(11, "assigns 'x', declared outside the loop, which is not a reduction", "11:26"),
        why(15, "reads an element of 'a' that another iteration may write (it stores only a[i])", "15:42"),
        why(
            20,
            "stores into an element of 'h' whose index is not the loop variable plus or minus a loop-invariant int",
            "20:26",
        ),
        why(24, "stores into a[i] and a[i + 1]: different iterations may write one element", "24:45"),
        why(29, "return ends the loop early", "30:28"),
        why(36, "break ends the loop early", "37:21"),
        why(44, "updates 's' with operators of different kinds, so it is not a reduction", "44:26"),
        why(49, "stores into something other than a variable or an array element", "49:26"),
    ];
    let mut lines = prange_lines(&stderr);
    let global = lines.pop().expect("the global's loop");
    assert_eq!(lines, expected, "{stderr}");
    assert_eq!(
        global,
        "53:5: refused: assigns 'total', which is not a plain local variable (a global, or shared with a closure), \
         so it is not a reduction (line 53:23); runs as range would"
    );
}

#[test]
fn stats_count_runs_blocks_iterations_and_reduction_types() {
    let program = "fn f(a, n) {\n\
                   \x20   let s = 0\n\
                   \x20   let m = 1.5\n\
                   \x20   for i in prange(n) { s += a[i]; m = max(m, a[i]) }\n\
                   \x20   for i in prange(n) { a[i] = 0 }\n\
                   \x20   return [s, m]\n\
                   }\n\
                   fn g(n) {\n\
                   \x20   let p = 1\n\
                   \x20   for i in prange(n) { p *= 1 }\n\
                   \x20   return p\n\
                   }\n\
                   let a = array(1000, 2)\n\
                   print(f(a, 1000), f(a, 10), f(a, 0), g(0))\n";
    let out = run(&["--stats"], program);
    let stderr = text(&out.stderr);
    assert_eq!(text(&out.stdout), "[2000, 2] [0, 1.5] [0, 1.5] 1\n", "{stderr}");
    assert_eq!(
        prange_lines(&stderr),
        [
            "4:9: interpreted, blocks in order: 3 runs, 17 blocks, 1010 iterations, T ms; reductions: s += (int), m max (float)",
            "5:9: interpreted, blocks in order: 3 runs, 17 blocks, 1010 iterations, T ms",
            "10:9: interpreted, blocks in order: 1 run, 0 blocks, 0 iterations, T ms; reductions: p *= (not run)",
        ],
        "{stderr}"
    );
    // without prange loops, no section
    let out = run(&["--stats"], "print(1)\n");
    assert!(!text(&out.stderr).contains("prange loops:"));
}

#[test]
fn threads_option_sets_the_count_and_is_checked() {
    let out = run(&["--threads", "3"], "print(threads())\nset_threads(5)\nprint(threads())\n");
    assert_eq!(text(&out.stdout), "3\n5\n", "{}", text(&out.stderr));
    let out = run(&[], "print(threads() == cpu_count())\n");
    assert_eq!(text(&out.stdout), "true\n", "{}", text(&out.stderr));
    for bad in ["0", "257", "-1"] {
        let out = run(&["--threads", bad], "print(1)\n");
        assert_eq!(out.status.code(), Some(2), "--threads {bad}");
        assert_eq!(text(&out.stderr), "error: --threads must be an int from 1 to 256\n");
        assert_eq!(text(&out.stdout), "");
    }
    let out = run(&["--threads", "two"], "print(1)\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid value 'two' for '--threads <N>'"));
}

/// The `# expect:` lines of a program of this folder, as its stdout.
fn expected_stdout(path: &Path) -> String {
    let source = std::fs::read_to_string(path).expect("read the program");
    source
        .lines()
        .filter_map(|l| l.strip_prefix("# expect:"))
        .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
        .collect()
}

#[test]
fn results_do_not_depend_on_the_thread_count_or_the_mode() {
    for name in ["seq_float_sum.mini", "seq_random.mini", "seq_nested.mini"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prange").join(name);
        let want = expected_stdout(&path);
        for threads in ["1", "2", "5"] {
            for (mode, flags) in common::MODES {
                let args = [&["run", "--threads", threads][..], flags, &["FILE"]].concat();
                let out = mini_command(&args, &path).output().expect("run mini");
                let stderr = text(&out.stderr);
                assert!(out.status.success(), "{name} --threads {threads} ({mode}): {stderr}");
                assert_eq!(text(&out.stdout), want, "{name} --threads {threads} ({mode})");
            }
        }
    }
}
