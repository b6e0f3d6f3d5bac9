//! The process's own input and output: source files that are not UTF-8 (generated here, since
//! such files are awkward to keep in git), stdout that is a closed pipe or a full device, the
//! command line's checks, and the full text of thread error reports, which the program harness
//! only compares between modes (lang-spec/lexical.md, lang-spec/cli.md, lang-spec/errors.md).
#![cfg(unix)]

mod common;

use common::{ScratchFile, mini, text};
use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

/// How long a program may take to end once its stdout is closed before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(20);

/// Waits for a child, killing it and failing after [`DEADLINE`].
fn wait_or_kill(child: Child, what: &str) -> Output {
    common::wait_or_kill(child, DEADLINE, what).0
}

#[test]
fn invalid_utf8_is_a_syntax_error_at_the_first_bad_byte() {
    let file = ScratchFile::new("bad_utf8.mini", b"print(1)\nlet s = \"\xff\"\n");
    let path = file.as_str();
    for command in ["run", "check"] {
        let out = mini(&[command, path]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert_eq!(out.stdout, b"", "{command} ran the program");
        assert!(stderr.starts_with("error: source is not valid UTF-8\n"), "{command}: {stderr}");
        assert!(stderr.contains(&format!("--> {path}:2:10\n")), "{command}: {stderr}");
    }
}

#[test]
fn invalid_utf8_anywhere_never_panics() {
    // a bad byte at the start, after a multi-byte character, at the end, and a truncated sequence
    let cases: [(&[u8], &str); 4] = [
        (b"\xfe", ":1:1\n"),
        (b"let s = \"\xc3\xa9\xc3\"\n", ":1:11\n"),
        (b"print(1)\n\n\x80", ":3:1\n"),
        (b"# \xe2\x82", ":1:3\n"),
    ];
    for (i, (bytes, location)) in cases.iter().enumerate() {
        let file = ScratchFile::new(&format!("bad_utf8_{i}.mini"), bytes);
        let out = mini(&["check", file.as_str()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "case {i}: {stderr}");
        assert!(stderr.starts_with("error: source is not valid UTF-8\n"), "case {i}: {stderr}");
        assert!(stderr.contains(location), "case {i}: expected {location:?} in {stderr}");
    }
}

#[test]
fn switch_interval_out_of_range_is_a_usage_error() {
    let file = ScratchFile::new("switch.mini", b"print(1)\n");
    let path = file.as_str();
    for bad in ["1e23", "86400000.5", "0", "nan", "inf", "-inf"] {
        let out = mini(&["run", &format!("--switch-interval={bad}"), path]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert_eq!(out.stdout, b"", "{bad}: the program ran");
        assert!(stderr.starts_with("error: --switch-interval must be a positive number"), "{bad}: {stderr}");
    }
    for good in ["86400000", "0.0000001", "5"] {
        let out = mini(&["run", "--switch-interval", good, path]);
        assert_eq!(out.status.code(), Some(0), "{good}: {}", text(&out.stderr));
        assert_eq!(out.stdout, b"1\n");
    }
}

/// Runs a program whose stdout is a pipe, reads its first line, closes the pipe (as
/// `mini run prog.mini | head -1` does) and returns how the program ended.
fn run_with_closed_stdout(name: &str, flags: &[&str], program: &str) -> Output {
    let file = ScratchFile::new(&format!("{name}.mini"), program);
    let mut child = common::run_command(flags, file.path()).spawn().expect("start mini");
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().expect("a stdout pipe"));
    stdout.read_line(&mut first).expect("read the first line");
    assert_eq!(first, "0\n", "{name}: first line");
    drop(stdout);
    wait_or_kill(child, name)
}

/// An endless loop printing 0, 1, 2, ...
const PRINT_FOREVER: &str = "let i = 0\nwhile true { print(i); i += 1 }\n";

#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    let in_thread = "fn w() { let i = 0; while true { print(i); i += 1 } }\njoin(spawn(w))\n";
    let native = "\
fn f(n) {
    let s = 0
    for i in range(n) { s += i }
    return s
}
let k = 0
while true { print(f(k % 2)); k += 1 }
";
    let cases = [
        ("main", &[][..], PRINT_FOREVER),
        ("thread", &[][..], in_thread),
        ("thread_jit", &["--jit"][..], in_thread),
        ("native", &["--jit", "--jit-threshold", "0"][..], native),
    ];
    for (name, flags, program) in cases {
        let out = run_with_closed_stdout(name, flags, program);
        assert_eq!(out.status.code(), Some(1), "{name}: stderr: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{name}: a broken pipe is not reported");
    }
}

/// Runs a program with stdout on `/dev/full`, where every write fails with ENOSPC.
fn run_on_dev_full(name: &str, program: &str) -> Output {
    let file = ScratchFile::new(&format!("{name}.mini"), program);
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("open /dev/full");
    let child = common::mini_cmd()
        .arg("run")
        .arg(file.path())
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mini");
    wait_or_kill(child, name)
}

#[test]
fn a_full_stdout_is_an_error() {
    let cases = [
        // written at exit, from the buffer
        ("full_small", "print(\"hello\")\n"),
        // written while the program runs, which never ends by itself
        ("full_loop", PRINT_FOREVER),
        ("full_thread", "fn w() { let i = 0; while true { print(i); i += 1 } }\njoin(spawn(w))\n"),
    ];
    for (name, program) in cases {
        let out = run_on_dev_full(name, program);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: stderr: {stderr}");
        assert!(stderr.starts_with("error: cannot write to stdout: "), "{name}: stderr: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line, no location: {stderr}");
    }
}

#[test]
fn a_stdout_that_is_not_open_discards_output() {
    use std::os::unix::process::CommandExt;
    // As Python (whose `sys.stdout` is then `None`): the program runs on and its output is lost.
    let program = "print(\"lost\")\nlet s = 0\nfor i in range(1000) { s += i; print(i) }\nassert(s == 499500)\n";
    let file = ScratchFile::new("stdout_not_open.mini", program);
    let mut command = common::mini_cmd();
    command.arg("run").arg(file.path()).stderr(Stdio::piped());
    // SAFETY: between fork and exec, `close` is async-signal-safe and touches no Rust state.
    unsafe {
        command.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let out = wait_or_kill(command.spawn().expect("start mini"), "stdout_not_open");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn nested_thread_errors_show_one_stack_per_thread() {
    let program = "\
fn inner(x) {
    return 10 // x
}
fn middle() {
    let t = spawn(inner, 0)
    return join(t)
}
let t = spawn(middle)
join(t)
";
    let file = ScratchFile::new("nested.mini", program);
    let path = file.as_str();
    let expected = format!(
        "\
error: division by zero
 --> {path}:9:1
  |
9 | join(t)
  | ^^^^^^^
in the joined thread (most recent call last):
  {path}:2:12 in inner
in the thread that joined it (most recent call last):
  {path}:6:12 in middle
stack (most recent call last):
  {path}:9:1 in <main>
"
    );
    for flags in [&[][..], &["--jit", "--jit-threshold", "0"][..]] {
        let out = mini(&[&["run"][..], flags, &[path]].concat());
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(text(&out.stderr), expected, "{flags:?}");
    }
}

#[test]
fn a_closed_stderr_is_not_a_crash() {
    // `mini check prog.mini 2>&1 | head -1` with thousands of warnings
    let program: String = (0..20_000).map(|i| format!("print(undeclared_{i})\n")).collect();
    let file = ScratchFile::new("many_warnings.mini", program);
    let mut child =
        common::mini_cmd().arg("check").arg(file.path()).stderr(Stdio::piped()).spawn().expect("start mini");
    let mut first = String::new();
    let mut stderr = BufReader::new(child.stderr.take().expect("a stderr pipe"));
    stderr.read_line(&mut first).expect("read the first line");
    assert_eq!(first, "warning: undefined variable 'undeclared_0'\n");
    drop(stderr);
    let out = wait_or_kill(child, "check");
    assert_eq!(out.status.code(), Some(0), "warnings do not change the exit code");
}
