//! Ctrl-C (SIGINT) while a program runs: the interpreter raises `interrupted` at its next safe
//! point, with the line and the stack; a main thread stuck in native code (`--jit`), or unable to
//! get the GIL from a thread that does not hand it over, ends the program with
//! `error: interrupted` and no location (lang-spec/errors.md, lang-spec/jit.md). Either way the
//! program ends within 200 ms of the signal. The signal is sent once the program has had time to
//! reach its endless loop.
#![cfg(unix)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long the program runs before the signal: its endless loop starts within milliseconds.
const HEAD_START: Duration = Duration::from_millis(1500);

/// How long a signalled program may take to end before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(20);

/// How long a signalled program may take to end: the specified 200 ms, with room for a loaded
/// test machine (mini itself takes about 100 ms at most: `interrupt::GRACE`).
const PROMPT: Duration = Duration::from_millis(1000);

fn write_program(name: &str, program: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("interrupt_{}_{name}.mini", std::process::id()));
    std::fs::File::create(&path).and_then(|mut f| f.write_all(program.as_bytes())).expect("write the program");
    path
}

/// Runs `mini run <flags> <program>`, sends SIGINT after [`HEAD_START`], and collects its output;
/// fails unless the program ends within [`PROMPT`] of the signal.
fn interrupted_run(name: &str, flags: &[&str], program: &str) -> Output {
    let path = write_program(name, program);
    let child = Command::new(env!("CARGO_BIN_EXE_mini"))
        .arg("run")
        .args(flags)
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mini");
    std::thread::sleep(HEAD_START);
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) with the pid of our own child, which has not been waited for yet, so the
    // pid cannot belong to another process.
    let sent = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(sent, 0, "kill(SIGINT) failed");
    let (output, took) = wait_or_kill(child);
    let _ = std::fs::remove_file(&path);
    let stderr = text(&output.stderr);
    assert!(took < PROMPT, "{name}: mini took {took:?} to end after Ctrl-C; stderr: {stderr}");
    output
}

/// Waits for the program to end; returns its output and how long it took.
fn wait_or_kill(mut child: Child) -> (Output, Duration) {
    let start = Instant::now();
    while child.try_wait().expect("poll mini").is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("mini did not end within {DEADLINE:?} of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = start.elapsed();
    (child.wait_with_output().expect("collect mini's output"), took)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn interpreter_raises_interrupted_at_the_running_line() {
    let program = "print(\"started\")\nlet x = 0\nwhile true {\n    x = (x + 1) % 1000\n}\n";
    let out = interrupted_run("interp", &[], program);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stdout, "started\n");
    assert!(stderr.starts_with("error: interrupted\n"), "stderr: {stderr}");
    // the safe point is the loop's test (line 3) or its body (line 4)
    assert!(stderr.contains(".mini:3:") || stderr.contains(".mini:4:"), "no location: {stderr}");
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
    let out = interrupted_run("native", &["--jit"], program);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    // stdout is flushed before the program ends; the error has no location
    assert_eq!(stdout, "started\n");
    assert_eq!(stderr, "error: interrupted\n");
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
    let out = interrupted_run("keep_gil", &["--jit", "--keep-gil"], program);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stdout, "started\n");
    assert_eq!(stderr, "error: interrupted\n");
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
    let out = interrupted_run("huge_interval", &["--switch-interval", "86400000"], SPINNING_THREAD);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stdout, "started\n");
    assert!(stderr.starts_with("error: interrupted\n"), "stderr: {stderr}");
    assert!(stderr.contains(".mini:8:"), "not located at the main thread's loop: {stderr}");
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
    let out = interrupted_run("keep_gil_thread", &["--jit", "--keep-gil"], program);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stdout, "started\n");
    assert_eq!(stderr, "error: interrupted\n");
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
        let out = interrupted_run(name, flags, JOIN_SPINNER);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{name}: stderr: {stderr}");
        assert_eq!(stdout, "started\n", "{name}");
        assert!(stderr.starts_with("error: interrupted\n"), "{name}: stderr: {stderr}");
        assert!(stderr.contains(".mini:6:1\n"), "{name}: not located at the join: {stderr}");
    }
}

#[test]
fn join_of_keep_gil_native_code_cannot_block_ctrl_c() {
    // `join` wakes on Ctrl-C, but the joined thread keeps the GIL inside native code
    let program = JOIN_SPINNER
        .replace("let x = 0\n    while true { x = (x + 1) % 1000 }", "for i in range(9_000_000_000_000_000_000) {}");
    let out = interrupted_run("join_keep_gil", &["--jit", "--keep-gil"], &program);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stdout, "started\n");
    assert_eq!(stderr, "error: interrupted\n");
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
    let out = interrupted_run("exit_wait", &[], program);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stdout, "started\n");
    assert_eq!(stderr, "error: interrupted\n");
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
        let out = interrupted_run(name, &[], program);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{name}: stderr: {stderr}");
        assert_eq!(stdout, "started\n", "{name}");
        assert!(stderr.starts_with("error: interrupted\n"), "{name}: stderr: {stderr}");
        assert!(stderr.contains(&format!(".mini:{line}:1\n")), "{name}: not located at the wait: {stderr}");
    }
}
