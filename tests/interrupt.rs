//! Ctrl-C (SIGINT) while a program runs: the interpreter raises `interrupted` at its next safe
//! point, with the line and the stack; a main thread stuck in native code (`--jit`), or unable to
//! get the GIL from a thread that does not hand it over, ends the program with
//! `error: interrupted` and no location (lang-spec/errors.md, lang-spec/jit.md). Either way the
//! program ends within 200 ms of the signal. The signal is sent once the program has had time to
//! reach its endless loop.
#![cfg(unix)]

mod common;

use common::{At, assert_interrupted, interrupted_promptly};

/// Interrupts `program` run with `flags` (see [`interrupted_promptly`]) and checks that it ended
/// at once with the report of `at`.
fn check(name: &str, flags: &[&str], program: &str, at: At) {
    let out = interrupted_promptly(name, flags, program);
    assert_interrupted(name, &out, at);
}

#[test]
fn interpreter_raises_interrupted_at_the_running_line() {
    let program = "print(\"started\")\nlet x = 0\nwhile true {\n    x = (x + 1) % 1000\n}\n";
    // the safe point is the loop's test (line 3) or its body (line 4)
    check("interp", &[], program, At::OneOf(&[".mini:3:", ".mini:4:"]));
}

#[test]
fn native_code_of_the_main_thread_ends_the_program() {
    let program = "\
fn spin(n) {
    let s = 0
    let i = 0
    while i < n {
        s = (s + i) % 1000
        i += 1
    }
    return s
}
print(\"started\")
print(spin(9_000_000_000_000_000_000))
";
    // stdout is flushed before the program ends; the error has no location
    check("native", &["--jit"], program, At::Nowhere);
}

#[test]
fn keep_gil_native_code_ends_the_same_way() {
    let program = "\
fn spin(n) {
    let s = 0
    for i in range(n) { s = (s + i) % 1000 }
    return s
}
print(\"started\")
print(spin(9_000_000_000_000_000_000))
";
    check("keep_gil", &["--jit", "--keep-gil"], program, At::Nowhere);
}

/// An interpreted endless loop for a spawned thread, and a main thread that wants the GIL.
const SPINNING_THREAD: &str = "\
fn spin() {
    let x = 0
    while true { x = (x + 1) % 1000 }
}
print(\"started\")
let t = spawn(spin)
let y = 0
while true { y = (y + 1) % 1000 }
";

#[test]
fn a_thread_that_never_hands_over_the_gil_cannot_block_ctrl_c() {
    // With a switch interval of a day the spinning thread is never asked for the GIL by the
    // interval; Ctrl-C asks it, and the main thread raises `interrupted` at its own loop.
    // (located at the main thread's loop)
    check("huge_interval", &["--switch-interval", "86400000"], SPINNING_THREAD, At::OneOf(&[".mini:8:"]));
}

#[test]
fn keep_gil_native_code_in_a_spawned_thread_cannot_block_ctrl_c() {
    // The spawned thread holds the GIL inside native code, which has no safe points: the main
    // thread never gets the lock back, and the program ends without a location.
    let program = "\
fn spin(n) {
    let s = 0
    for i in range(n) { s = (s + i) % 1000 }
    return s
}
print(\"started\")
let t = spawn(spin, 9_000_000_000_000_000_000)
let y = 0
while true { y = (y + 1) % 1000 }
";
    check("keep_gil_thread", &["--jit", "--keep-gil"], program, At::Nowhere);
}

/// A main thread that waits in `join` for a thread that never ends.
const JOIN_SPINNER: &str = "\
fn spin() {
    let x = 0
    while true { x = (x + 1) % 1000 }
}
print(\"started\")
join(spawn(spin))
";

#[test]
fn join_is_interrupted_at_once_at_the_join() {
    for (name, flags) in [("join", &[][..]), ("join_huge_interval", &["--switch-interval", "86400000"][..])] {
        check(name, flags, JOIN_SPINNER, At::OneOf(&[".mini:6:1\n"]));
    }
}

#[test]
fn join_of_keep_gil_native_code_cannot_block_ctrl_c() {
    // `join` wakes on Ctrl-C, but the joined thread keeps the GIL inside native code
    let program = JOIN_SPINNER
        .replace("let x = 0\n    while true { x = (x + 1) % 1000 }", "for i in range(9_000_000_000_000_000_000) {}");
    check("join_keep_gil", &["--jit", "--keep-gil"], &program, At::Nowhere);
}

#[test]
fn waiting_for_threads_at_exit_is_interrupted() {
    let program = "\
fn spin() {
    let x = 0
    while true { x = (x + 1) % 1000 }
}
spawn(spin)
print(\"started\")
";
    check("exit_wait", &[], program, At::Nowhere);
}

#[test]
fn sleep_and_the_waits_of_locks_queues_and_barriers_are_interrupted_at_once() {
    // each program's main thread ends in a wait that would last a day; the other threads sleep
    let programs = [
        ("sleep", "print(\"started\")\nsleep(86400)\n", 2),
        ("get", "let q = queue()\nfn f() { sleep(86400) }\nspawn(f)\nprint(\"started\")\nget(q)\n", 5),
        (
            "acquire",
            "let l = lock()\nfn f() {\n    acquire(l)\n    sleep(86400)\n}\nspawn(f)\nsleep(0.05)\nprint(\"started\")\nacquire(l)\n",
            9,
        ),
        ("wait", "let b = barrier(2)\nfn f() { sleep(86400) }\nspawn(f)\nprint(\"started\")\nwait(b)\n", 5),
        // the main thread's own item returns; it then waits for the pool thread's (a counted wait)
        (
            "pmap",
            "fn f(x) {\n    if x == 1 { sleep(86400) }\n    return x\n}\nprint(\"started\")\npmap(f, range(2), 2)\n",
            6,
        ),
    ];
    for (name, program, line) in programs {
        // located at the wait
        check(name, &[], program, At::OneOf(&[&format!(".mini:{line}:1\n")]));
    }
}

#[test]
fn try_neither_catches_ctrl_c_nor_runs_finally() {
    let program = "\
print(\"started\")
let x = 0
try {
    while true {
        x = (x + 1) % 1000
    }
} catch e {
    print(\"caught\", e[\"message\"])
} finally {
    print(\"finally\")
}
";
    check("try", &[], program, At::OneOf(&[".mini:4:", ".mini:5:"]));
    // the same in a join: the wait ends with `interrupted`, which passes through the try
    let program = "\
fn spin() {
    let x = 0
    while true { x = (x + 1) % 1000 }
}
print(\"started\")
try { join(spawn(spin)) } catch { print(\"caught\") } finally { print(\"finally\") }
";
    check("try_join", &[], program, At::OneOf(&[".mini:6:"]));
}

/// The processes whose command line names `file`: forked children of a mini that ran it.
fn running(file: &std::path::Path) -> Vec<String> {
    let needle = file.to_str().expect("a UTF-8 path").as_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let named = |pid: &str| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmdline.windows(needle.len()).any(|w| w == needle)
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()) && named(pid))
        .collect()
}

/// Interrupts a program that calls `forked`, as [`check`] does, then checks that none of its
/// processes outlives it (a child still running is killed, and the test fails).
fn check_forked(name: &str, flags: &[&str], program: &str, at: At) {
    let file = common::ScratchFile::new(&format!("{name}.mini"), program);
    let child = common::run_command(flags, file.path()).spawn().expect("start mini");
    std::thread::sleep(common::HEAD_START);
    // the search finds them all while they run: this process and its two children
    assert_eq!(running(file.path()).len(), 3, "{name}: the processes of forked(3, f) before Ctrl-C");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) with the pid of our own child, which has not been waited for yet, so the
    // pid cannot belong to another process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0, "kill(SIGINT) failed");
    let (out, took) = common::wait_or_kill(child, common::INTERRUPT_DEADLINE, name);
    assert!(took < common::PROMPT, "{name}: mini took {took:?} to end after Ctrl-C");
    assert_interrupted(name, &out, at);
    // a child killed by the system when its parent died may take a moment to go
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut left = running(file.path());
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = running(file.path());
    }
    for pid in &left {
        if let Ok(pid) = pid.parse::<libc::pid_t>() {
            // SAFETY: kill(2) of a process that runs the test's own scratch program.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    assert!(left.is_empty(), "{name}: processes left running after Ctrl-C: {left:?}");
}

#[test]
fn ctrl_c_during_forked_stops_every_process() {
    // every rank spins in the interpreter: rank 0, in this process, raises `interrupted` where
    // it runs, and the children are killed and reaped
    let all_spin = "\
fn spin(rank, n) {
    let x = 0
    while true {
        x = (x + 1) % 1000
    }
}
print(\"started\")
forked(3, spin)
";
    check_forked("forked_all_spin", &[], all_spin, At::OneOf(&[".mini:3:", ".mini:4:"]));
    // rank 0 returns and this process waits for the children, which spin (natively under --jit)
    let children_spin = "\
fn spin(n) {
    let s = 0
    for i in range(n) { s = (s + i) % 1000 }
    return s
}
fn work(rank, size) {
    if rank == 0 { return 0 }
    return spin(9_000_000_000_000_000_000)
}
print(\"started\")
forked(3, work)
";
    for flags in [&[][..], &["--jit"][..]] {
        check_forked("forked_wait", flags, children_spin, At::OneOf(&[".mini:11:1\n"]));
    }
    // rank 0 spins in native code, which ends the program at once; the children die with it
    let native = children_spin.replace("if rank == 0 { return 0 }\n    ", "");
    check_forked("forked_native", &["--jit"], &native, At::Nowhere);
}
