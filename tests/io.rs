//! Files and the process (lang-spec/io.md), where `programs.rs` cannot reach: programs that
//! write files run with a fresh scratch directory of their own as the working directory (so
//! runs in parallel and in three modes never share a file), `input` reads a given stdin,
//! `exit` codes other than 0 and 1, `exit` from a spawned thread, the order of `eprint` and
//! `print` output, and Ctrl-C reaching a main thread blocked in `input`.
#![cfg(unix)]

mod common;

use common::{MINI, MODES, ScratchFile, text};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a program here may run before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `program` in every mode, each in a fresh scratch directory as its working directory,
/// with `stdin` as its standard input; returns each mode's name and output.
fn run_all(name: &str, program: &str, stdin: &str) -> Vec<(&'static str, Output)> {
    MODES
        .iter()
        .map(|(mode, flags)| {
            let file = ScratchFile::new(&format!("{name}.mini"), program);
            let dir = file.path().parent().expect("a scratch directory");
            let mut child = common::run_command(flags, file.path())
                .current_dir(dir)
                .stdin(Stdio::piped())
                .spawn()
                .expect("start mini");
            let mut input = child.stdin.take().expect("a stdin pipe");
            input.write_all(stdin.as_bytes()).expect("write stdin");
            drop(input);
            let (out, _) = common::wait_or_kill(child, DEADLINE, &format!("{name} [{mode}]"));
            (*mode, out)
        })
        .collect()
}

/// Checks that every mode ended with `code`, printed `stdout` and wrote `stderr`.
fn assert_all(name: &str, program: &str, stdin: &str, code: i32, stdout: &str, stderr: &str) {
    for (mode, out) in run_all(name, program, stdin) {
        let (got_out, got_err) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "{name} [{mode}]: stderr: {got_err}");
        assert_eq!(got_out, stdout, "{name} [{mode}]: stdout");
        assert_eq!(got_err, stderr, "{name} [{mode}]: stderr");
    }
}

#[test]
fn write_then_read_back() {
    let program = r#"
write_file("out.txt", "one\ntwo\r\nthree")
print(read_file("out.txt") == "one\ntwo\r\nthree")
print(read_lines("out.txt"))
write_file("out.txt", "short")
print(read_file("out.txt"))
append_file("out.txt", " and more\n")
append_file("new.txt", "created by append\n")
append_file("new.txt", "café ✓\n")
print(read_lines("out.txt"), read_lines("new.txt"))
write_file("empty.txt", "")
print(read_file("empty.txt") == "", read_lines("empty.txt"))
"#;
    let stdout = "true\n[\"one\", \"two\", \"three\"]\nshort\n[\"short and more\"] [\"created by append\", \"café ✓\"]\ntrue []\n";
    assert_all("write_read", program, "", 0, stdout, "");
}

#[test]
fn a_big_file_round_trips_through_read_lines() {
    // lines longer than read_lines' chunk, and \r\n split across chunk boundaries
    let program = r#"
let parts = []
let n = 0
for i in range(4000) {
    let line = str(i) + ":"
    let k = (i * 7919) % 200
    let filler = "x"
    while len(filler) < k { filler = filler + filler }
    line = line + filler
    if i == 1234 {
        let big = "y"
        while len(big) < 600000 { big = big + big }
        line = line + big
    }
    push(parts, line)
    if i % 3 == 0 { push(parts, "\r\n") } else if i % 3 == 1 { push(parts, "\n") } else { push(parts, "\r") }
}
let text = ""
let chunk = ""
for i in range(len(parts)) {
    chunk = chunk + parts[i]
    if len(chunk) > 10000 {
        append_file("big.txt", chunk)
        chunk = ""
    }
}
append_file("big.txt", chunk)
let lines = read_lines("big.txt")
let ok = len(lines) == 4000
for i in range(len(lines)) {
    if lines[i] != parts[2 * i] { ok = false }
}
print(len(lines), ok, len(read_file("big.txt")) > 1000000)
"#;
    assert_all("big_file", program, "", 0, "4000 true true\n", "");
}

#[test]
fn input_reads_lines_until_the_end() {
    let program = r#"
let line = input()
let n = 0
while line != nil {
    n = n + 1
    print(n, "[" + line + "]", len(line))
    line = input()
}
print(input())
"#;
    let stdout = "1 [first] 5\n2 [] 0\n3 [crlf] 4\n4 [café] 4\n5 [last, no newline] 16\nnil\n";
    assert_all("input_lines", program, "first\n\ncrlf\r\ncafé\nlast, no newline", 0, stdout, "");
}

#[test]
fn input_prompt_goes_to_stdout_after_earlier_output() {
    let program = "print(\"hello\")\nlet name = input(\"name? \")\nprint(\"hi \" + name)\nprint(input(\"again? \"))\n";
    assert_all("input_prompt", program, "Ada\n", 0, "hello\nname? hi Ada\nagain? nil\n", "");
}

#[test]
fn input_that_is_not_utf8_is_an_error() {
    for (mode, out) in run_all("input_utf8", "print(input())\n", "\u{7f}ok\n") {
        assert_eq!(out.status.code(), Some(0), "[{mode}]");
        assert_eq!(text(&out.stdout), "\u{7f}ok\n", "[{mode}]");
    }
    for (mode, flags) in MODES {
        let file = ScratchFile::new("input_bad.mini", "let x = input()\n");
        let mut child = common::run_command(flags, file.path()).stdin(Stdio::piped()).spawn().expect("start mini");
        child.stdin.take().expect("stdin").write_all(b"\xff\xfe\n").expect("write stdin");
        let (out, _) = common::wait_or_kill(child, DEADLINE, "input_bad");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "[{mode}]: {stderr}");
        assert!(stderr.starts_with("error: standard input is not valid UTF-8\n"), "[{mode}]: {stderr}");
        assert!(stderr.contains("input_bad.mini:1:9"), "[{mode}]: {stderr}");
    }
}

#[test]
fn eprint_flushes_stdout_first() {
    // stdout and stderr into one pipe: the order is the program's order only if eprint flushes
    for (mode, flags) in MODES {
        let file =
            ScratchFile::new("eprint.mini", "print(\"a\")\neprint(\"b\", 2)\nprint(\"c\")\neprint([1.5, nil])\n");
        let script = format!("exec '{MINI}' run {} '{}' 2>&1", flags.join(" "), file.as_str());
        let out = Command::new("sh").arg("-c").arg(script).output().expect("run sh");
        assert_eq!(out.status.code(), Some(0), "[{mode}]");
        assert_eq!(text(&out.stdout), "a\nb 2\nc\n[1.5, nil]\n", "[{mode}]");
    }
}

#[test]
fn exit_codes_and_flushing() {
    let program = "for i in range(3) { print(i) }\neprint(\"bye\")\nexit(42)\nprint(\"never\")\n";
    assert_all("exit42", program, "", 42, "0\n1\n2\n", "bye\n");
    assert_all("exit255", "print(\"x\")\nexit(255)\n", "", 255, "x\n", "");
    assert_all("exit0", "exit()\n", "", 0, "", "");
    // a lot of buffered output (stdout is a pipe) is all written before the end
    let program = "for i in range(100000) { print(i) }\nexit(7)\n";
    for (mode, out) in run_all("exit_flush", program, "") {
        assert_eq!(out.status.code(), Some(7), "[{mode}]");
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().count(), 100000, "[{mode}]");
        assert!(stdout.ends_with("99999\n"), "[{mode}]");
    }
}

#[test]
fn exit_from_a_spawned_thread_ends_the_whole_process() {
    // the main thread waits forever on a queue; a compiled worker computes, prints and exits
    let program = r#"
fn work(n) {
    let s = 0
    for i in range(n) { s = s + i }
    return s
}
fn worker(n) {
    print("sum", work(n))
    exit(3)
}
let q = queue()
let t = spawn(worker, 1000)
print("waiting")
get(q)
print("never")
"#;
    for (mode, out) in run_all("exit_thread", program, "") {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "[{mode}]: {stderr}");
        let stdout = text(&out.stdout);
        assert!(stdout.contains("waiting\n") && stdout.contains("sum 499500\n"), "[{mode}]: {stdout}");
        assert!(!stdout.contains("never"), "[{mode}]: {stdout}");
        assert_eq!(stderr, "", "[{mode}]");
    }
    // other threads are not waited for: a sleeping thread does not delay the exit
    let program = "spawn(fn() { sleep(60) })\nprint(\"bye\")\nexit(5)\n";
    let started = Instant::now();
    assert_all("exit_no_join", program, "", 5, "bye\n", "");
    assert!(started.elapsed() < Duration::from_secs(20), "exit waited for a sleeping thread");
}

#[test]
fn file_errors_name_the_path_and_the_reason() {
    let program = "write_file(\"ro.txt\", \"x\")\nprint(\"made\")\nread_file(\"missing.txt\")\n";
    for (mode, out) in run_all("file_error", program, "") {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "[{mode}]");
        assert_eq!(text(&out.stdout), "made\n", "[{mode}]");
        assert!(
            stderr.starts_with("error: cannot open 'missing.txt': No such file or directory\n"),
            "[{mode}]: {stderr}"
        );
    }
    // a write that fails after the file was opened
    if std::path::Path::new("/dev/full").exists() {
        for (mode, out) in run_all("full", "append_file(\"/dev/full\", \"x\")\n", "") {
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "[{mode}]");
            assert!(
                stderr.starts_with("error: cannot write '/dev/full': No space left on device\n"),
                "[{mode}]: {stderr}"
            );
        }
    }
}

#[test]
fn other_threads_run_while_the_main_thread_waits_for_input() {
    // the main thread blocks in input() with stdin open and empty; a worker must still finish
    // its loop and report through a file, which the harness then sees
    let program = r#"
fn worker() {
    let s = 0
    for i in range(200000) { s = s + i }
    write_file("done.txt", str(s))
}
let t = spawn(worker)
print(input())
join(t)
print(read_file("done.txt"))
"#;
    for (mode, flags) in MODES {
        let file = ScratchFile::new("gil_input.mini", program);
        let dir = file.path().parent().expect("a scratch directory").to_path_buf();
        let mut child = common::run_command(flags, file.path())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .spawn()
            .expect("start mini");
        let mut stdin = child.stdin.take().expect("a stdin pipe");
        // the worker can only write done.txt while the main thread, blocked in input(), holds
        // no GIL
        let started = Instant::now();
        while !dir.join("done.txt").exists() {
            assert!(started.elapsed() < DEADLINE, "[{mode}]: the worker did not run during input()");
            std::thread::sleep(Duration::from_millis(10));
        }
        stdin.write_all(b"line\n").expect("write stdin");
        drop(stdin);
        let (out, _) = common::wait_or_kill(child, DEADLINE, "gil_input");
        assert_eq!(out.status.code(), Some(0), "[{mode}]: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "line\n19999900000\n", "[{mode}]");
    }
}

#[test]
fn ctrl_c_ends_a_main_thread_blocked_in_input() {
    for (mode, flags) in MODES {
        let file = ScratchFile::new("ctrl_c_input.mini", "print(\"started\")\nlet x = input()\nprint(\"never\")\n");
        let mut child = common::run_command(flags, file.path()).stdin(Stdio::piped()).spawn().expect("start mini");
        let stdin = child.stdin.take().expect("a stdin pipe");
        std::thread::sleep(common::HEAD_START);
        let pid = libc::pid_t::try_from(child.id()).expect("a pid");
        // SAFETY: kill(2) with the pid of our own child, which has not been waited for yet, so
        // the pid cannot belong to another process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0, "kill(SIGINT) failed");
        let (out, took) = common::wait_or_kill(child, DEADLINE, "ctrl_c_input");
        drop(stdin);
        assert!(took < common::PROMPT, "[{mode}]: took {took:?} to end after Ctrl-C");
        common::assert_interrupted(&format!("input [{mode}]"), &out, common::At::Nowhere);
    }
}
