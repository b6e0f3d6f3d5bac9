//! The interactive prompt (lang-spec/cli.md, "The prompt"): `mini repl` and `mini` alone, driven
//! through stdin pipes (the non-interactive mode: no prompts, values and errors as at the
//! prompt) and through a pseudo-terminal (prompts, line editing, history, Ctrl-C and Ctrl-D).
#![cfg(unix)]

mod common;

use common::{spawn_with_stdin, text};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs `mini <args>` on `input` through a pipe, without a history file.
fn session(args: &[&str], input: &str) -> Output {
    spawn_with_stdin(args, input).wait_with_output().expect("wait for mini")
}

#[test]
fn definitions_are_kept_across_inputs_and_values_are_printed() {
    let input =
        "let x = 40\nfn add(a, b) { return a + b }\nadd(x, 2)\nx = x + 1\nx\n\"abc\"\n[1, \"a\"]\nnil\nprint(\"hi\")\n";
    for args in [&["repl"][..], &[]] {
        let out = session(args, input);
        assert_eq!(text(&out.stdout), "42\n41\n\"abc\"\n[1, \"a\"]\nhi\n", "mini {args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "no prompts without a terminal");
        assert_eq!(out.status.code(), Some(0));
    }
}

#[test]
fn a_statement_continues_while_a_bracket_or_block_is_open() {
    let input = "fn f(a) {\n\n  let b = a * 2\n  return b\n}\nf(21)\nlet l = [1,\n  2,\n\n  3]\nl\nif len(l) > 2 {\n  print(\"three\")\n} else {\n  print(\"fewer\")\n}\n1 +\n  2\n";
    let out = session(&["repl"], input);
    assert_eq!(text(&out.stdout), "42\n[1, 2, 3]\nthree\n3\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn errors_are_reported_and_the_session_goes_on() {
    let input = "let x = 1\nx // 0\ny\nlet = 3\nx + 1\nfn bad() {\n  return 1 // 0\n}\nbad()\nx + 2\n";
    let out = session(&["repl"], input);
    assert_eq!(text(&out.stdout), "2\n3\n", "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for expected in [
        "error: division by zero\n --> <stdin>:2:1\n",
        "error: undefined variable 'y'\n --> <stdin>:3:1\n",
        "<stdin>:4:5",
        // a function of an earlier input shows its own line
        "error: division by zero\n --> <stdin>:7:10\n",
        "<stdin>:9:1 in <main>",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert_eq!(out.status.code(), Some(0), "the end of input ends the session with 0");
}

#[test]
fn an_unfinished_statement_at_the_end_of_input_is_an_error() {
    let out = session(&["repl"], "print(1)\nprint(2\n");
    assert_eq!(text(&out.stdout), "1\n");
    let err = text(&out.stderr);
    assert!(err.contains("found end of file\n --> <stdin>:3:1"), "{err}");
}

#[test]
fn threads_of_an_input_run_on_and_are_waited_for_at_the_end() {
    let input = "let q = queue()\nlet t = spawn(fn() { put(q, 7) })\nget(q) * 6\nspawn(fn() { sleep(0.05)\n print(\"late\") })\n1\n";
    let out = session(&["repl"], input);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("42\n"), "{stdout}");
    assert!(stdout.ends_with("late\n"), "the session waits for its threads: {stdout}");
}

#[test]
fn the_jit_compiles_a_hot_function_and_sees_later_assignments() {
    let input = "let k = 10\nfn sq(a) { return a * a + k }\nlet s = 0\nfor i in range(2000) { s = s + sq(i) }\ns\nk = 20\nsq(3)\nfn g(x) { return sq(x) + 1 }\ng(2)\n";
    let out = session(&["repl", "--jit", "--stats"], input);
    assert_eq!(text(&out.stdout), "2664687000\n29\n25\n", "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("compiled sq(int) -> int"), "sq was compiled:\n{err}");
    assert!(err.contains("sq (line 2)"), "{err}");
    let out = session(&["--jit", "--jit-threshold", "0"], input);
    assert_eq!(text(&out.stdout), "2664687000\n29\n25\n", "mini --jit: {}", text(&out.stderr));
}

#[test]
fn input_reads_the_lines_after_the_statement() {
    let out = session(&["repl"], "let s = input()\nhello there\nlen(s)\ns\n");
    assert_eq!(text(&out.stdout), "11\n\"hello there\"\n", "{}", text(&out.stderr));
}

#[test]
fn a_name_first_seen_by_an_input_that_did_not_compile_is_named_later() {
    let out = session(&["repl"], "let w = 2; break\nw\nlet w = 4\nw\n");
    assert_eq!(text(&out.stdout), "4\n");
    let err = text(&out.stderr);
    assert!(err.contains("error: 'break' outside a loop\n --> <stdin>:1:12"), "{err}");
    assert!(err.contains("error: undefined variable 'w'\n --> <stdin>:2:1"), "{err}");
}

#[test]
fn long_sessions_take_linear_time() {
    // a function of 20,000 lines (one input), then 10,000 one-line inputs defining globals:
    // parsed once each, not once per line or against all the text before them
    let mut input = String::from("fn f() {\n    let x = 0\n");
    input.push_str(&"    x = x + 1\n".repeat(20_000));
    input.push_str("    return x\n}\nf()\n");
    for i in 0..10_000 {
        input.push_str(&format!("let g{i} = {i}\n"));
    }
    input.push_str("g9999 + f()\n");
    let started = Instant::now();
    let out = session(&["repl"], &input);
    let took = started.elapsed();
    assert_eq!(text(&out.stdout), "20000\n29999\n", "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(15), "took {took:?} (quadratic: well over a minute)");
}

#[test]
fn native_code_of_an_earlier_input_sees_globals_of_later_ones() {
    // a thread of an earlier input spins natively, without the GIL, on a global flag; later
    // inputs define new globals, then set the flag, and the spin ends
    let input = "let stop = false\nlet count = array(1, 0)\nfn spin(c) {\n    while not stop {\n        c[0] = c[0] + 1\n    }\n    return c[0] > 0\n}\nlet t = spawn(spin, count)\nsleep(0.2)\nlet other = 5\nfn helper(x) { return x + other }\nhelper(1)\nstop = true\njoin(t)\n";
    for flags in [&["--jit", "--stats"][..], &["--jit", "--jit-threshold", "0", "--stats"], &["--stats"]] {
        let started = Instant::now();
        let out = session(&[&["repl"][..], flags].concat(), input);
        assert_eq!(text(&out.stdout), "6\ntrue\n", "{flags:?}: {}", text(&out.stderr));
        assert!(started.elapsed() < Duration::from_secs(10), "{flags:?}: the spin ended");
        if flags[0] == "--jit" {
            let err = text(&out.stderr);
            assert!(err.contains("compiled spin(int array) -> bool"), "{flags:?}: spin ran natively:\n{err}");
            assert!(err.contains("1 released it"), "{flags:?}: without the GIL:\n{err}");
        }
    }
}

#[test]
fn help_is_still_there_and_usage_errors_stay_errors() {
    let out = common::mini_cmd().arg("--help").output().expect("run mini");
    assert!(text(&out.stdout).contains("repl"), "{}", text(&out.stdout));
    assert_eq!(out.status.code(), Some(0));
    // the prompt takes no file, and its JIT options need --jit, as `mini run`'s do
    for args in [&["prog.mini"][..], &["repl", "prog.mini"], &["--jit-threshold", "5"], &["repl", "--keep-gil"]] {
        let out = common::mini_cmd().args(args).stdin(Stdio::null()).output().expect("run mini");
        assert_eq!(out.status.code(), Some(2), "mini {args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "mini {args:?} ran nothing");
    }
}

/// A `mini` session on a pseudo-terminal: its output so far, read on a thread.
struct Pty {
    child: Child,
    master: std::fs::File,
    output: Arc<Mutex<Vec<u8>>>,
    /// How much of the output earlier expectations have consumed.
    seen: usize,
}

impl Pty {
    /// Starts `mini <args>` with a new pseudo-terminal as its controlling terminal.
    fn start(args: &[&str], history: &std::path::Path) -> Pty {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two descriptors into the two integers; the other arguments may
        // be null (no name, default settings and size).
        let r =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(r, 0, "openpty failed");
        // SAFETY: both descriptors were just opened and belong to nobody else.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = common::mini_cmd();
        cmd.args(args).env("MINI_HISTORY", history).env("TERM", "xterm");
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup")));
        cmd.stdout(Stdio::from(slave.try_clone().expect("dup")));
        cmd.stderr(Stdio::from(slave));
        // SAFETY: between fork and exec the child only makes async-signal-safe calls: setsid
        // and ioctl, making the terminal on its stdin its controlling terminal (for Ctrl-C).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY as _, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start mini");
        let master = std::fs::File::from(master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().expect("dup"), output.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty { child, master, output, seen: 0 }
    }

    fn send(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).expect("write to the terminal");
    }

    /// Waits until the output after what earlier expectations consumed contains `needle`.
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = text(&self.output.lock().unwrap());
            if let Some(at) = out.get(self.seen..).and_then(|rest| rest.find(needle)) {
                self.seen += at + needle.len();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the terminal output:\n{:?}",
                &out[self.seen.min(out.len())..]
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit; its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("mini did not exit:\n{}", text(&self.output.lock().unwrap()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Pty {
    /// A session a failed test leaves running is ended.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn on_a_terminal_the_prompt_edits_lines_and_keeps_history() {
    let dir = std::env::temp_dir().join(format!("mini-repl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let history = dir.join("history");
    let mut t = Pty::start(&["repl"], &history);
    t.expect(">>> ");
    t.send("let x = 4\r");
    t.expect(">>> ");
    // backspace: "x * 9" becomes "x * 3"
    t.send("x * 9\x7f3\r");
    t.expect("\n12\r\n");
    t.expect(">>> ");
    // the cursor moves left: "x 5" becomes "x + 5"
    t.send("x 5\x1b[D+ \r");
    t.expect("\n9\r\n");
    t.expect(">>> ");
    // a block continues with the continuation prompt
    t.send("fn f(a) {\r");
    t.expect("... ");
    t.send("return a * 2\r");
    t.expect("... ");
    t.send("}\r");
    t.expect(">>> ");
    t.send("f(x)\r");
    t.expect("\n8\r\n");
    t.expect(">>> ");
    // Ctrl-C drops the statement being typed, open bracket and all
    t.send("print(1,\r");
    t.expect("... ");
    t.send("\x03");
    t.expect(">>> ");
    t.send("x + 100\r");
    t.expect("\n104\r\n");
    t.expect(">>> ");
    // Ctrl-C while an input runs raises `interrupted` and returns to the prompt
    // (once it prints, the line editor has left raw mode: Ctrl-C is a signal again)
    t.send("print(\"spin\" + \"ning\"); while true { x = x + 1 }\r");
    t.expect("spinning");
    std::thread::sleep(Duration::from_millis(100));
    t.send("\x03");
    t.expect("error: interrupted");
    t.expect(">>> ");
    t.send("x > 4\r");
    t.expect("\ntrue\r\n");
    t.expect(">>> ");
    // the up arrow brings back the line before
    t.send("\x1b[A\r");
    t.expect("\ntrue\r\n");
    t.expect(">>> ");
    // Ctrl-D on an empty line ends the session
    t.send("\x04");
    assert_eq!(t.exit_code(), Some(0));
    let saved = std::fs::read_to_string(&history).unwrap_or_default();
    assert!(saved.contains("fn f(a) {") && saved.contains("x > 4"), "history file:\n{saved}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_history_file_is_no_error() {
    let mut t = Pty::start(&[], std::path::Path::new("/nonexistent/dir/history"));
    t.expect(">>> ");
    t.send("1 + 1\r");
    t.expect("\n2\r\n");
    t.expect(">>> ");
    t.send("\x04");
    assert_eq!(t.exit_code(), Some(0));
}
