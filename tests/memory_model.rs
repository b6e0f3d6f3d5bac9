//! The memory model that compiled code keeps (lang-spec/threads.md, "Memory model"): the spin-wait
//! and stop-flag programs of `tests/threads/` end with their `# expect:` output in every mode,
//! including the ones `tests/programs.rs` does not run: `--jit --keep-gil`, where spinning native
//! code holds the GIL and must hand it over at its loops' safe points, with and without
//! `--jit-threshold 0`, and each of them again on a single CPU, where a thread that does not hand
//! over starves the others for good. A run that does not end within [`DEADLINE`] fails (it is
//! killed, so a broken memory model fails the suite instead of hanging it); nothing else is timed.
//! Then the cases only compiled code has: a global that changes type under a running native call
//! (the documented error), and Ctrl-C reaching native code that spin-waits on the main thread.
#![cfg(unix)]

mod common;

use common::{At, ScratchFile, assert_interrupted, interrupted_run, text, wait_or_kill};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// How long one run may take before it counts as hung (they take milliseconds).
const DEADLINE: Duration = Duration::from_secs(60);

/// The programs, in `tests/threads/`.
const PROGRAMS: &[&str] = &[
    "compiled_stop_flag_read_in_inlined_callee.mini",
    "compiled_spin_on_element_it_stored.mini",
    "compiled_stop_flag_global.mini",
    "compiled_stop_flag_element.mini",
    "compiled_gil_handoff_three_spinners_global_flag.mini",
    "compiled_spin_flag_set_by_compiled_code.mini",
    "compiled_global_level_read_live.mini",
    "compiled_stop_flag_in_counted_loop.mini",
    "compiled_spin_on_atomic_cas.mini",
];

/// The modes each program runs in.
const MODES: &[&[&str]] = &[
    &[],
    &["--jit"],
    &["--jit", "--jit-threshold", "0"],
    &["--jit", "--keep-gil"],
    &["--jit", "--keep-gil", "--jit-threshold", "0"],
];

fn program_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/threads").join(name)
}

/// The stdout a program's `# expect:` lines promise.
fn expected_stdout(source: &str) -> String {
    let mut out = String::new();
    for line in source.lines() {
        if let Some(pos) = line.find("# expect:") {
            out.push_str(line[pos + "# expect:".len()..].trim());
            out.push('\n');
        }
    }
    out
}

/// Runs `mini run <flags> <path>`, on CPU 0 only when `one_cpu`; fails when it has not ended
/// within [`DEADLINE`] (after killing it).
fn run(path: &Path, flags: &[&str], one_cpu: bool) -> Output {
    let mut cmd = common::run_command(flags, path);
    // Cranelift's IR verifier on, and internal JIT errors reported on stderr (as in programs.rs)
    cmd.env("MINI_JIT_VERIFY", "1");
    if one_cpu {
        // SAFETY: between fork and exec the closure only calls sched_setaffinity(2), which is
        // async-signal-safe, on a set built on its own stack.
        unsafe {
            cmd.pre_exec(|| {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                Ok(())
            });
        }
    }
    let child = cmd.spawn().expect("start mini");
    wait_or_kill(child, DEADLINE, &format!("mini run {} {}", flags.join(" "), path.display())).0
}

fn check_all(one_cpu: bool) {
    let mut failures = Vec::new();
    for name in PROGRAMS {
        let path = program_path(name);
        let source = std::fs::read_to_string(&path).expect("read the program");
        let want = expected_stdout(&source);
        assert!(!want.is_empty(), "{name} has no `# expect:` line");
        for flags in MODES {
            let out = run(&path, flags, one_cpu);
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            if stdout != want || !out.status.success() || !stderr.is_empty() {
                failures.push(format!(
                    "{name} [{}]{}: exit {:?}\n  stdout: {stdout:?}\n  want:   {want:?}\n  stderr: {stderr}",
                    flags.join(" "),
                    if one_cpu { " on one CPU" } else { "" },
                    out.status.code()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn spin_waits_and_stop_flags_end_in_every_mode() {
    check_all(false);
}

#[test]
fn spin_waits_and_stop_flags_end_in_every_mode_on_one_cpu() {
    check_all(true);
}

/// A worker spinning on a global int that the main thread then assigns a float.
const TYPE_CHANGE: &str = "\
let X = 0
fn worker(started) {
    started[0] = 1
    while X == 0 { }
    return X
}
let started = array(1, 0)
let t = spawn(worker, started)
while started[0] == 0 { }
X = 1.5
print(join(t))
";

#[test]
fn a_global_that_changes_type_under_running_native_code_is_an_error_naming_it() {
    let file = ScratchFile::new("type_change.mini", TYPE_CHANGE);
    let path = file.path();
    let interp = run(path, &[], false);
    assert_eq!(text(&interp.stdout), "1.5\n");
    for flags in [&["--jit"][..], &["--jit", "--keep-gil"][..]] {
        let out = run(path, flags, false);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: stderr: {stderr}");
        assert!(
            stderr.starts_with("error: global 'X' changed from int to float while compiled code was reading it\n"),
            "{flags:?}: stderr: {stderr}"
        );
        assert!(stderr.contains(".mini:4:") && stderr.contains("in worker"), "{flags:?}: not located: {stderr}");
    }
}

/// The main thread spinning in native code on an element nobody sets.
const MAIN_SPINS: &str = "\
fn wait_for(flag) {
    while flag[0] == 0 { }
    return flag[0]
}
print(\"started\")
print(wait_for(array(1, 0)))
";

#[test]
fn ctrl_c_stops_native_code_spinning_on_the_main_thread_at_its_loop() {
    for flags in [&["--jit"][..], &["--jit", "--keep-gil"][..]] {
        let (out, _) = interrupted_run("ctrl_c", flags, MAIN_SPINS);
        assert_interrupted(&format!("{flags:?}"), &out, At::OneOf(&[".mini:2:"]));
        let stderr = text(&out.stderr);
        // raised by the loop's safe point, with the native frame and the caller's
        assert!(stderr.contains(".mini:2:") && stderr.contains("in wait_for"), "{flags:?}: not located: {stderr}");
    }
}
