//! Peak memory with reference cycles: a program that makes hundreds of thousands of unreachable
//! cycles (lists, dicts, closures that capture themselves, lists holding the handle of a thread
//! that returned them) must peak within twice the resident memory of its cycle-free twin, which
//! makes the same objects without closing the cycles (issue 8). Without a cycle collector the
//! cyclic programs keep every cycle, 15 to 30 times the twin's peak.
//!
//! Each program is fed to `mini run -` and its peak resident set size is read from `wait4`'s
//! `ru_maxrss` for that child alone. Memory, not time, so the bound holds on a loaded machine.

#![cfg(target_os = "linux")]

mod common;

/// The cyclic program's peak may be at most this many times the twin's.
const MAX_RATIO: f64 = 2.0;

/// Runs the cyclic program and its twin (`CLOSE` replaced by each closing statement), checks
/// they print the same, and that the cyclic one's peak is within `MAX_RATIO` of the twin's.
fn check(kind: &str, template: &str, cyclic: &str, twin: &str) {
    let (out_cyclic, rss_cyclic) = common::run_measured(&["run", "-"], &template.replace("CLOSE", cyclic));
    let (out_twin, rss_twin) = common::run_measured(&["run", "-"], &template.replace("CLOSE", twin));
    eprintln!("{kind}: peak RSS {rss_cyclic} KiB with cycles, {rss_twin} KiB without");
    assert_eq!(out_cyclic, out_twin, "{kind}: the two programs print differently");
    let ratio = rss_cyclic as f64 / rss_twin as f64;
    assert!(
        ratio <= MAX_RATIO,
        "{kind}: peak RSS {rss_cyclic} KiB with cycles is {ratio:.2}x the {rss_twin} KiB without"
    );
}

#[test]
fn list_cycles_run_in_bounded_memory() {
    let template = "
        let n = 0
        for i in range(300000) {
            let a = [i, \"payload\"]
            let b = [a, i]
            CLOSE
            n = n + len(a) + len(b)
        }
        print(n)
    ";
    check("lists", template, "push(a, b)", "push(b, a)");
}

#[test]
fn dict_cycles_run_in_bounded_memory() {
    let template = "
        let n = 0
        for i in range(300000) {
            let d = {\"i\": i}
            let e = {\"d\": d}
            CLOSE
            n = n + len(d) + len(e)
        }
        print(n)
    ";
    check("dicts", template, "d[\"e\"] = e", "d[\"e\"] = i");
}

#[test]
fn self_capturing_closures_run_in_bounded_memory() {
    let template = "
        let n = 0
        for i in range(300000) {
            CLOSE
            n = n + 1
        }
        print(n)
    ";
    check("closures", template, "fn g() { return g }", "fn g() { return i }");
}

#[test]
fn thread_handle_cycles_run_in_bounded_memory() {
    let template = "
        let n = 0
        for i in range(4000) {
            let l = [i]
            for j in range(300) { push(l, j) }
            let t = spawn(fn() { return l })
            CLOSE
            n = n + len(join(t))
        }
        print(n)
    ";
    check("threads", template, "push(l, t)", "push(l, 0)");
}
