//! What `mini` does at start in place of Rust's runtime start-up (src/main.rs, `cli::start`;
//! ARCHITECTURE.md, "Speed"): closed standard descriptors are opened on /dev/null, the program's
//! thread is named `main`, and the command lines parsed without clap mean what clap makes of
//! them. (A closed pipe on stdout, which needs SIGPIPE ignored, is tests/process_io.rs's.)

mod common;

use common::{ScratchFile, mini_on, text, wait_or_kill};
use std::os::unix::process::CommandExt;
use std::process::{Output, Stdio};
use std::time::Duration;

/// Runs `mini run prog.mini` holding `program` with the descriptor `fd` closed. Were it left
/// closed, the first file mini opens would take its number: with stdin closed, `input()` would
/// read the pipe of the Ctrl-C handler and never return (the run is then killed after 20 s).
fn run_with_closed(fd: i32, program: &str) -> Output {
    let file = ScratchFile::new("prog.mini", program);
    let mut cmd = common::mini_cmd();
    cmd.arg("run").arg(file.path()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: close(2) is async-signal-safe, and the closure touches nothing else of the parent.
    unsafe {
        cmd.pre_exec(move || {
            libc::close(fd);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("start mini");
    wait_or_kill(child, Duration::from_secs(20), &format!("descriptor {fd} closed")).0
}

#[test]
fn a_closed_stdin_reads_as_empty() {
    let out = run_with_closed(0, "print(input())\nprint(\"after\")\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "nil\nafter\n", "input() sees the end of an empty stdin");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn a_closed_stdout_swallows_the_output() {
    let out = run_with_closed(1, "for i in range(1000) { print(i) }\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "writes to the /dev/null in its place succeed");
}

#[test]
fn a_closed_stderr_does_not_change_the_exit_code() {
    let out = run_with_closed(2, "print(1)\nprint(1 // 0)\n");
    assert_eq!(out.status.code(), Some(1), "a program error is still exit code 1");
    assert_eq!(text(&out.stdout), "1\n");
}

#[test]
fn the_program_runs_on_the_thread_named_main() {
    let out = mini_on(&["run", "--stats", "FILE"], "print(1)\n");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stats = text(&out.stderr);
    let row = stats.lines().nth(1).unwrap_or_else(|| panic!("no row under the header:\n{stats}"));
    assert_eq!(row.split_whitespace().next(), Some("main"), "{stats}");
}

#[test]
fn the_quick_command_lines_run_as_clap_parses_them() {
    let program = "print(args())\n";
    for (flags, want) in [
        (&["run", "FILE"][..], "[]\n"),
        (&["run", "--jit", "FILE", "--", "a", "--b"][..], "[\"a\", \"--b\"]\n"),
        (&["run", "FILE", "--stats", "--", ""][..], "[\"\"]\n"),
    ] {
        let out = mini_on(flags, program);
        assert_eq!(out.status.code(), Some(0), "{flags:?}: stderr: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), want, "{flags:?}");
    }
    // a second file, or an option only clap knows, is clap's to refuse
    let out = mini_on(&["run", "FILE", "other.mini"], program);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let out = mini_on(&["run", "--jit", "--jit", "FILE"], program);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
}
