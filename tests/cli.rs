//! The command-line surface that the program suite does not reach (lang-spec/cli.md):
//! `--dump-bytecode`, the warnings of `mini check`, programs read from stdin (`-`),
//! `--switch-interval` validation, and a GIL hand-off seen in the `--stats` table.
//! (The JIT's options and reports are tested by tests/jit_cli.rs.)

mod common;

use common::{assert_ran, mini_on, spawn_with_stdin, text};
use std::process::Output;

/// Runs `mini` with `args`, writing `input` to its stdin.
fn mini_stdin(args: &[&str], input: &str) -> Output {
    spawn_with_stdin(args, input).wait_with_output().expect("wait for mini")
}

#[test]
fn dump_bytecode_lists_each_function_and_its_instructions() {
    let out = mini_on(&["run", "--dump-bytecode", "FILE"], "fn add(a, b) { return a + b }\nprint(add(1, 2))\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "3\n", "the program still runs");
    let dump = text(&out.stderr);
    let main_at = dump.find("fn <main>").unwrap_or_else(|| panic!("no <main> header:\n{dump}"));
    let add_at = dump.find("fn add (params 2").unwrap_or_else(|| panic!("no header for add:\n{dump}"));
    assert!(main_at < add_at, "the main program comes first:\n{dump}");
    let body = &dump[add_at..];
    for instr in ["Add {", "Return {"] {
        assert!(body.contains(instr), "add's body has no {instr}:\n{dump}");
    }
    assert!(dump[..add_at].contains("Call"), "main calls add:\n{dump}");
    let numbered = body
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .all(|l| l.split_whitespace().next().is_some_and(|pc| pc.parse::<usize>().is_ok()));
    assert!(numbered, "each instruction line starts with its index:\n{dump}");
}

#[test]
fn dump_bytecode_is_printed_before_the_program_runs() {
    let out = mini_on(&["run", "--dump-bytecode", "FILE"], "print(1 // 0)\n");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let dump_at = err.find("fn <main>").expect("a dump");
    let error_at = err.find("error: division by zero").expect("the runtime error");
    assert!(dump_at < error_at, "{err}");
}

#[test]
fn check_warns_about_names_nothing_can_define() {
    let program = "print(1)\nprint(undefined_name)\nfn f() { return other + 1 }\nlet ok = 2\nprint(ok, len([]))\n";
    let out = mini_on(&["check", "FILE"], program);
    assert_eq!(out.status.code(), Some(0), "warnings do not change the exit code");
    assert_eq!(text(&out.stdout), "", "check runs nothing");
    let err = text(&out.stderr);
    assert!(err.contains("warning: undefined variable 'undefined_name'"), "{err}");
    assert!(err.contains("prog.mini:2:7\n"), "the warning names file:line:col:\n{err}");
    assert!(err.contains("warning: undefined variable 'other'"), "{err}");
    assert!(err.contains("prog.mini:3:17\n"), "{err}");
    assert!(!err.contains("'ok'") && !err.contains("'len'") && !err.contains("error"), "{err}");
    assert_eq!(err.matches("warning: ").count(), 2, "{err}");
}

#[test]
fn check_warnings_come_in_source_order() {
    // Function bodies are compiled when their declaration is hoisted, before the statements
    // around them; the warnings still come out in the order of the source.
    let program = "fn f() {\n    print(a)\n    return b\n}\nprint(c)\nfn g() { return d }\n";
    let err = text(&mini_on(&["check", "FILE"], program).stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(" --> ")).collect();
    let expected = ["prog.mini:2:11", "prog.mini:3:12", "prog.mini:5:7", "prog.mini:6:17"];
    assert_eq!(lines.len(), expected.len(), "{err}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.ends_with(want), "{line} should be {want}:\n{err}");
    }
}

#[test]
fn check_of_a_clean_program_prints_nothing() {
    let out = mini_on(&["check", "FILE"], "fn f(x) { return x + later }\nlet later = 1\nprint(f(1))\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "", "a global declared later is not a warning");
}

#[test]
fn run_prints_no_warnings() {
    let stderr = assert_ran(&mini_on(&["run", "FILE"], "fn never() { return missing }\nprint(1)\n"), "1\n");
    assert_eq!(stderr, "");
}

#[test]
fn check_reports_the_first_error_with_exit_code_1() {
    let out = mini_on(&["check", "FILE"], "print(1)\nlet = 2\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let err = text(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("prog.mini:2:"), "{err}");
}

#[test]
fn run_reads_the_program_from_stdin() {
    assert_ran(&mini_stdin(&["run", "-"], "print(1 + 1)\n"), "2\n");
}

#[test]
fn stdin_programs_are_named_stdin_in_errors() {
    let out = mini_stdin(&["run", "-"], "print(\"before\")\nprint(1 // 0)\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "before\n");
    let err = text(&out.stderr);
    assert!(err.starts_with("error: division by zero\n"), "{err}");
    assert!(err.contains("--> <stdin>:2:7\n"), "{err}");
    assert!(err.contains("<stdin>:2:7 in <main>"), "{err}");
}

#[test]
fn stdin_syntax_errors_and_check_warnings_name_stdin() {
    let out = mini_stdin(&["run", "-"], "let x = (1 +\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("<stdin>:"), "{}", text(&out.stderr));
    let out = mini_stdin(&["check", "-"], "print(x)\n");
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("warning: undefined variable 'x'") && err.contains("<stdin>:1:7"), "{err}");
}

#[test]
fn stdin_program_gets_script_arguments() {
    assert_ran(&mini_stdin(&["run", "-", "--", "a", "-b"], "print(args())\n"), "[\"a\", \"-b\"]\n");
}

#[test]
fn valid_switch_intervals_run_the_program() {
    for ms in ["5", "0.5", "1", "1000", "1e-3"] {
        let out = mini_on(&["run", "--switch-interval", ms, "FILE"], "print(6 * 7)\n");
        assert!(out.status.success(), "--switch-interval {ms}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "42\n", "--switch-interval {ms}");
    }
}

#[test]
fn invalid_switch_intervals_are_usage_errors() {
    let cases: &[&[&str]] = &[
        &["--switch-interval", "0"],
        &["--switch-interval", "-1"],
        &["--switch-interval=-1"],
        &["--switch-interval", "abc"],
        &["--switch-interval", "nan"],
        &["--switch-interval", "inf"],
        &["--switch-interval=-inf"],
        &["--switch-interval", ""],
        &["--switch-interval"],
    ];
    for flags in cases {
        let mut args = vec!["run", "FILE"];
        args.extend_from_slice(flags);
        let out = mini_on(&args, "print(\"ran\")\n");
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "", "{flags:?}: nothing runs");
        assert!(text(&out.stderr).contains("error"), "{flags:?}: {}", text(&out.stderr));
    }
}

/// One row of the `--stats` thread table.
struct ThreadRow {
    name: String,
    bytecodes: u64,
    handoffs: u64,
    /// Milliseconds blocked in join, lock, queue, barrier, sleep.
    waits: [f64; 5],
}

/// The rows of the `--stats` thread table in `stderr` (lang-spec/cli.md): after the header,
/// lines of a name and nine numbers.
fn thread_table(stderr: &str) -> Vec<ThreadRow> {
    let mut lines = stderr.lines().skip_while(|l| !l.starts_with("thread "));
    let header: Vec<&str> = lines.next().expect("a --stats header").split_whitespace().collect();
    let waits = ["join-ms", "lock-ms", "queue-ms", "barrier-ms", "sleep-ms"];
    assert_eq!(header[..5], ["thread", "bytecodes", "gil-acq", "handoffs", "gil-wait-ms"]);
    assert_eq!(header[5..], waits);
    let mut rows = Vec::new();
    for line in lines {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() != 10 {
            break;
        }
        let number = |i: usize| cols[i].parse::<u64>().unwrap_or_else(|_| panic!("column {i} of {line:?}"));
        let ms = |i: usize| cols[i].parse::<f64>().unwrap_or_else(|_| panic!("column {i} of {line:?}"));
        let waits = [ms(5), ms(6), ms(7), ms(8), ms(9)];
        rows.push(ThreadRow { name: cols[0].to_string(), bytecodes: number(1), handoffs: number(3), waits });
    }
    rows
}

#[test]
fn two_interpreted_threads_hand_the_gil_to_each_other() {
    let program = "\
fn spin(n) {
    let s = 0
    for i in range(n) { s += i % 3 }
    return s
}
let a = spawn(spin, 10000000)
let b = spawn(spin, 10000000)
print(join(a), join(b))
";
    let err = assert_ran(&mini_on(&["run", "--switch-interval", "1", "--stats", "FILE"], program), "9999999 9999999\n");
    let rows = thread_table(&err);
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["main", "1", "2"], "{err}");
    for row in &rows[1..] {
        assert!(row.bytecodes > 10_000_000, "thread {} interpreted its loop:\n{err}", row.name);
        assert!(row.handoffs > 0, "thread {} never handed the GIL over:\n{err}", row.name);
    }
}

#[test]
fn stats_show_time_blocked_per_kind_of_wait_and_per_lock_and_queue() {
    let program = "\
let l = lock()
let q = queue(1)
fn sleeper() {
    sleep(0.2)
    acquire(l)
    release(l)
    put(q, 1)
}
acquire(l)
let t = spawn(sleeper)
sleep(0.3)
release(l)
join(t)
print(get(q))
";
    let err = assert_ran(&mini_on(&["run", "--stats", "FILE"], program), "1\n");
    let rows = thread_table(&err);
    let [main, worker] = &rows[..] else { panic!("two rows:\n{err}") };
    // main: 300 ms asleep, then a short join; the worker: 200 ms asleep, then about 100 ms
    // waiting for the lock that main holds while it sleeps
    assert!(main.waits[4] >= 290.0 && worker.waits[4] >= 190.0, "sleep-ms:\n{err}");
    assert!(worker.waits[1] >= 50.0, "lock-ms:\n{err}");
    assert!(main.waits[1] == 0.0 && main.waits[2] == 0.0 && worker.waits[0] == 0.0, "{err}");
    let site = |start: &str, end: &str| err.lines().any(|l| l.starts_with(start) && l.ends_with(end));
    assert!(site("lock made at ", "prog.mini:1:9: 2 acquires, 1 waited"), "{err}");
    assert!(site("queue made at ", "prog.mini:2:9: 1 puts, 1 gets, 0 waited"), "{err}");
}

#[test]
fn a_contended_lock_forms_no_convoy_under_the_jit() {
    // four threads take a lock around each increment; compiled code between the lock's calls
    // (`add_one`, once released the GIL at its first call) makes them wait on the lock now and
    // then. Were `release` to hand the lock to a waiter that must first get the GIL, nearly every
    // later `acquire` would wait too (137,919 of 200,000 did, at 70 times the interpreter's time)
    let program = "\
let l = lock()
fn add_one(c) {
    c[0] = c[0] + 1
}
fn work(c, times) {
    for i in range(times) { locked(l, add_one, c) }
}
let c = array(1, 0)
let ts = []
for k in range(4) { push(ts, spawn(work, c, 20000)) }
for t in ts { join(t) }
print(c[0])
";
    let err = assert_ran(&mini_on(&["run", "--jit", "--stats", "FILE"], program), "80000\n");
    let line = err.lines().find(|l| l.starts_with("lock made at ")).unwrap_or_else(|| panic!("{err}"));
    let waited: u64 = line
        .strip_suffix(" waited")
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(line.contains(": 80000 acquires, "), "{line}");
    assert!(waited < 8000, "at most a tenth of the acquires wait: {line}");
}
