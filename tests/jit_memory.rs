//! Peak memory of arrays made in compiled code (issue 12, item 3): a kernel that makes a
//! temporary array at every iteration, passes it to a compiled callee or gets one back, or
//! fails with arrays live, hundreds of thousands of times, must peak within twice the resident
//! memory of its twin, which makes one array and reuses it. Leaking them would take 10 to 50
//! times the twin's peak.
//!
//! Each program is fed to `mini run --jit -` (and, where the arrays reach the interpreter, also
//! interpreted as a reference) and its peak resident set size is read from `wait4`'s `ru_maxrss`
//! for that child alone. Memory, not time, so the bound holds on a loaded machine.

#![cfg(target_os = "linux")]

mod common;

/// The peak with temporaries may be at most this many times the twin's.
const MAX_RATIO: f64 = 2.0;

/// Runs the program (`MAKE` replaced by a fresh array's making) and its twin (`MAKE` replaced by
/// `twin`, which reuses one array) under `--jit`, checks that they print the same, and that the
/// first one's peak is within `MAX_RATIO` of the twin's.
fn check(kind: &str, template: &str, make: &str, twin: &str) {
    let jit = ["run", "--jit", "-"];
    let (out_fresh, rss_fresh) = common::run_measured(&jit, &template.replace("MAKE", make));
    let (out_twin, rss_twin) = common::run_measured(&jit, &template.replace("MAKE", twin));
    eprintln!("{kind}: peak RSS {rss_fresh} KiB making arrays, {rss_twin} KiB reusing one");
    assert_eq!(out_fresh, out_twin, "{kind}: the two programs print differently");
    let ratio = rss_fresh as f64 / rss_twin as f64;
    assert!(
        ratio <= MAX_RATIO,
        "{kind}: peak RSS {rss_fresh} KiB making arrays is {ratio:.2}x the {rss_twin} KiB reusing one"
    );
}

#[test]
fn temporaries_in_a_compiled_loop_are_freed() {
    // 400,000 arrays of 64 floats: about 230 MB if none were freed
    let template = "
        fn kernel(m, keep) {
            let s = 0.0
            for k in range(m) {
                let t = MAKE
                let u = t
                t[k % 64] = 1.5
                s += u[k % 64] + len(t)
                t[k % 64] = 0.0
            }
            return s
        }
        print(kernel(400000, array(64, 0.0)))
    ";
    check("temporaries", template, "array(64, 0.0)", "keep");
}

#[test]
fn arrays_through_compiled_callees_are_freed() {
    // made by an inlined callee, passed to a called one, returned by it: 300,000 x 512 bytes
    let template = "
        fn make(n) { return array(n, 0) }
        fn stamp(a, k) {
            for i in range(len(a)) { a[i] = k + i }
            return a
        }
        fn kernel(m, keep) {
            let s = 0
            for k in range(m) {
                let a = stamp(MAKE, k)
                s += a[63] - a[0]
            }
            return s
        }
        print(kernel(300000, array(64, 0)))
    ";
    check("callees", template, "make(64)", "keep");
}

#[test]
fn arrays_of_failed_native_calls_are_freed() {
    // 20,000 failed calls, each holding two arrays of 1,000 elements: 320 MB if kept
    let template = "
        fn kernel(n, keep) {
            let a = MAKE
            let b = MAKE
            a[0] = 1
            return a[n] + b[0]
        }
        let keep = array(1000, 0)
        let caught = 0
        for k in range(20000) {
            try { kernel(1000, keep) } catch e { caught += 1 }
        }
        print(caught)
    ";
    check("failed calls", template, "array(n, 0)", "keep");
}

#[test]
fn returned_arrays_are_freed_by_the_interpreter() {
    // 20,000 arrays of 2,000 floats returned to the interpreter and dropped there: 320 MB
    let template = "
        fn build(n, keep) {
            let a = MAKE
            for i in range(n) { a[i] = i * 0.5 }
            return a
        }
        let keep = array(2000, 0.0)
        let s = 0.0
        for k in range(20000) { s += build(2000, keep)[k % 2000] }
        print(s)
    ";
    check("returned", template, "array(n, 0.0)", "keep");
}

#[test]
fn small_temporaries_are_freed() {
    // arrays of at most 16 elements keep them in their header: 2,000,000 of 8 ints, about
    // 220 MB if none were freed
    let template = "
        fn kernel(m, keep) {
            let s = 0
            for k in range(m) {
                let t = MAKE
                t[k % 8] = k
                s += t[k % 8] - t[(k + 1) % 8]
                t[k % 8] = 0
            }
            return s
        }
        print(kernel(2000000, array(8, 0)))
    ";
    check("small temporaries", template, "array(8, 0)", "keep");
}

#[test]
fn small_returned_arrays_are_freed() {
    // 300,000 arrays of 16 floats returned to the interpreter (copied out of their headers):
    // about 70 MB if the headers or the copies were kept
    let template = "
        fn build(n, keep) {
            let a = MAKE
            for i in range(n) { a[i] = i * 0.5 }
            return a
        }
        let keep = array(16, 0.0)
        let s = 0.0
        for k in range(300000) { s += build(16, keep)[k % 16] }
        print(s)
    ";
    check("small returned", template, "array(n, 0.0)", "keep");
}

#[test]
fn temporaries_of_several_dimensions_are_freed() {
    // ndalloc: 300,000 arrays of 8 x 8 floats made by `array([8, 8], 0.0)`, one passed through
    // a variable and a compiled callee: about 180 MB if none were freed
    let template = "
        fn corner(a) { return a[7, 7] }
        fn kernel(m, keep) {
            let s = 0.0
            for k in range(m) {
                let t = MAKE
                let u = t
                t[k % 8, 7] = 1.5
                s += u[k % 8, 7] + corner(t) + len(t)
                t[k % 8, 7] = 0.0
            }
            return s
        }
        print(kernel(300000, array([8, 8], 0.0)))
    ";
    check("temporaries of several dimensions", template, "array([8, 8], 0.0)", "keep");
}

#[test]
fn returned_arrays_of_several_dimensions_are_freed() {
    // ndalloc: 20,000 arrays of 40 x 50 floats returned to the interpreter and dropped there:
    // 320 MB if none were freed
    let template = "
        fn build(n, keep) {
            let a = MAKE
            for i in range(n) { a[i, i % 50] = i * 0.5 }
            return a
        }
        let keep = array([40, 50], 0.0)
        let s = 0.0
        for k in range(20000) { s += build(40, keep)[k % 40, k % 40] }
        print(s)
    ";
    check("returned, several dimensions", template, "array([n, 50], 0.0)", "keep");
}
