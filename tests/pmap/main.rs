//! `pmap` as a user sees it from outside a program: its pool threads in `--stats` (named, and
//! reused rather than started per call), Ctrl-C ending a main thread that waits for the pool, the
//! cost per item against a plain loop, and (ignored by default: it needs two idle cores) the
//! speedup of two workers on compiled code. The `.mini` programs of this folder are run by
//! `programs.rs`.

#[path = "../common/mod.rs"]
mod common;

use common::{mini_on, text};
use std::process::Output;

/// Runs `mini run <flags> <program>` to the end.
fn run(flags: &[&str], program: &str) -> Output {
    mini_on(&[&["run"], flags, &["FILE"]].concat(), program)
}

/// The first column of each line of the `--stats` thread table.
fn stats_threads(stderr: &str) -> Vec<String> {
    let table = stderr.lines().skip_while(|l| !l.starts_with("thread ")).skip(1);
    table.take_while(|l| !l.starts_with("jit:")).filter_map(|l| l.split_whitespace().next()).map(String::from).collect()
}

#[test]
fn stats_list_pool_threads_after_spawned_ones_and_reuse_them() {
    // 200 calls of pmap with 3 workers start two pool threads, not 400
    let program = "fn sq(x) { return x * x }\n\
                   let s = 0\n\
                   for k in range(200) { s += len(pmap(sq, range(30), 3)) }\n\
                   join(spawn(sq, 2))\n\
                   print(s)\n";
    let out = run(&["--stats"], program);
    let stderr = text(&out.stderr);
    assert_eq!(text(&out.stdout), "6000\n", "stderr: {stderr}");
    assert_eq!(stats_threads(&stderr), ["main", "1", "pool-1", "pool-2"], "stderr: {stderr}");
}

#[test]
fn pool_grows_to_the_largest_request() {
    let program = "fn inc(x) { return x + 1 }\n\
                   pmap(inc, range(10), 2)\n\
                   pmap(inc, range(10), 4)\n\
                   pmap(inc, range(10), 3)\n\
                   print(pmap(inc, [1, 2], 64))\n";
    let out = run(&["--stats"], program);
    let stderr = text(&out.stderr);
    assert_eq!(text(&out.stdout), "[2, 3]\n", "stderr: {stderr}");
    // 64 workers for 2 items use one pool thread: the pool has the 3 that 4 workers needed
    assert_eq!(stats_threads(&stderr), ["main", "pool-1", "pool-2", "pool-3"], "stderr: {stderr}");
}

/// Item 0, on the main thread, runs a while (long enough for the pool thread to claim item 1;
/// interpreted, until Ctrl-C); item 1 runs for ever on the pool thread, so with `--jit` the main
/// thread ends up waiting for the pool.
#[cfg(unix)]
const ENDLESS_ON_POOL: &str = "fn work(seed) {\n\
                               \x20   let s = 0\n\
                               \x20   if seed == 0 { for i in range(20000000) { s = (s + i) % 7 } return s }\n\
                               \x20   while true { s = (s + seed) % 7 }\n\
                               }\n\
                               print(\"started\")\n\
                               pmap(work, [0, 1], 2)\n";

#[cfg(unix)]
#[test]
fn ctrl_c_ends_the_main_threads_wait_for_the_pool() {
    for flags in [&[][..], &["--jit"][..]] {
        let name = if flags.is_empty() { "wait" } else { "wait_jit" };
        let out = common::interrupted_promptly(name, flags, ENDLESS_ON_POOL);
        // the main thread was waiting in pmap, not in native code: the error has its line
        common::assert_interrupted(name, &out, common::At::OneOf(&[":7:1\n"]));
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: interrupted\n --> "), "{flags:?}: stderr: {stderr}");
    }
}

/// The main thread waits in `join` for a thread whose `pmap` runs a call on a pool thread that
/// waits in `join` too: Ctrl-C wakes the main thread's wait (a pool thread's `join` is not the
/// main thread's), so the error has the main thread's line.
#[cfg(unix)]
#[test]
fn ctrl_c_wakes_the_main_join_while_a_pool_thread_joins() {
    let program = "fn forever() { let x = 0\n while true { x = (x + 1) % 7 } }\n\
                   fn waiter(x) { return join(spawn(forever)) }\n\
                   let t = spawn(fn() { return pmap(waiter, [1, 2], 2) })\n\
                   print(\"started\")\n\
                   join(t)\n";
    let out = common::interrupted_promptly("joins", &[], program);
    let stderr = text(&out.stderr);
    assert_eq!(text(&out.stdout), "started\n");
    assert!(stderr.starts_with("error: interrupted\n --> "), "stderr: {stderr}");
    assert!(stderr.contains(":6:1\n"), "stderr: {stderr}");
}

/// A program timing a plain loop against `pmap` over the same trivial function, best of 5;
/// prints the extra microseconds per item of `pmap` with the default workers and with 1.
const OVERHEAD: &str = "fn f(x) { return x + 1 }\n\
    let n = 200000\n\
    let items = []\n\
    for i in range(n) { push(items, i) }\n\
    let best = [1e9, 1e9, 1e9]\n\
    for rep in range(5) {\n\
    \x20   let t0 = clock()\n\
    \x20   let r = []\n\
    \x20   for x in items { push(r, f(x)) }\n\
    \x20   best[0] = min(best[0], clock() - t0)\n\
    \x20   t0 = clock()\n\
    \x20   let r2 = pmap(f, items)\n\
    \x20   best[1] = min(best[1], clock() - t0)\n\
    \x20   t0 = clock()\n\
    \x20   let r3 = pmap(f, items, 1)\n\
    \x20   best[2] = min(best[2], clock() - t0)\n\
    \x20   assert(r == r2 and r == r3)\n\
    }\n\
    print((best[1] - best[0]) * 1e6 / n, (best[2] - best[0]) * 1e6 / n)\n";

/// Many cheap items through `pmap` give the loop's results (the program asserts it). The cost
/// per item is shown with --nocapture, not asserted (no timing assertions in tests: `cargo bench
/// -- processes` reports it against its goal).
#[test]
fn pmap_of_many_cheap_items_gives_the_loops_results() {
    for flags in [&[][..], &["--jit"][..]] {
        let out = run(flags, OVERHEAD);
        let stdout = text(&out.stdout);
        let costs: Vec<f64> = stdout.split_whitespace().map(|w| w.parse().expect("a float")).collect();
        assert_eq!(costs.len(), 2, "{flags:?}: {stdout} {}", text(&out.stderr));
        // shown with --nocapture: the measurement reported for issue 9
        eprintln!(
            "{flags:?}: pmap costs {} us per item over a loop with the default workers, {} with 1",
            costs[0], costs[1]
        );
    }
}

/// Two calls of about a second each of a compiled function: with 2 workers they take at most
/// 0.55 of the time they take with 1. Needs two idle cores, so it is ignored by default:
/// `cargo test --release --test pmap -- --ignored`.
#[test]
#[ignore]
fn two_workers_halve_the_time_of_two_compiled_calls() {
    let program = "fn work(seed) {\n\
                   \x20   let s = 0\n\
                   \x20   for i in range(400000000) { s += (i * seed + 12345) % 1000 }\n\
                   \x20   return s\n\
                   }\n\
                   pmap(work, [1], 1)\n\
                   let t0 = clock()\n\
                   let r1 = pmap(work, [1, 2], 1)\n\
                   let t1 = clock() - t0\n\
                   t0 = clock()\n\
                   let r2 = pmap(work, [1, 2], 2)\n\
                   let t2 = clock() - t0\n\
                   print(r1 == r2, t1, t2, t2 / t1)\n";
    let out = run(&["--jit"], program);
    let stdout = text(&out.stdout);
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"true"), "{stdout} {}", text(&out.stderr));
    let ratio: f64 = words[3].parse().expect("a float");
    eprintln!("1 worker {} s, 2 workers {} s: ratio {ratio}", words[1], words[2]);
    assert!(ratio <= 0.55, "2 workers took {ratio} of the 1-worker time: {stdout}");
}
