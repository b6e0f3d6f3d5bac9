//! Helpers shared by the integration tests: scratch program files, running the `mini` binary
//! (to its end, or with a time limit while its stdout and stderr are read), the check of a run
//! that succeeded, Ctrl-C sent to a running program and the checks of its `interrupted` report,
//! the lossy text of output bytes, the execution modes, the `.mini` files under a folder, the
//! environment variables of the harnesses and their seeded random generator, and a run measured
//! for its peak memory (`run_measured`). Each test crate compiles this module on its own (`mod
//! common;`, or `#[path = "../common/mod.rs"] mod common;` from a folder) and uses a part of it,
//! hence the module-wide `dead_code` allowance.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The `mini` binary that cargo builds for the tests.
pub const MINI: &str = env!("CARGO_BIN_EXE_mini");

/// The execution modes of `mini run`, with the extra flags of each: the interpreter, the JIT,
/// and the JIT compiling every function at its first call ("eager").
pub const MODES: [(&str, &[&str]); 3] =
    [("interp", &[]), ("jit", &["--jit"]), ("eager", &["--jit", "--jit-threshold", "0"])];

/// The JIT's cache of compiled code for the runs of this test process: a directory of its own
/// under cargo's scratch directory (`MINI_CACHE_DIR`), so that no test reads or fills the
/// user's cache, and no run of the tests depends on an earlier one. Within the process the runs
/// share it: a program's later runs take its code from the cache, which must change nothing.
/// The first call also removes the directories of test processes that have ended.
pub fn test_cache_dir() -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
    SWEPT.call_once(|| {
        // (where /proc tells which processes live)
        if !Path::new("/proc/self").exists() {
            return;
        }
        for entry in std::fs::read_dir(scratch).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("jit-cache-").and_then(|p| p.parse::<u32>().ok()) else { continue };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    scratch.join(format!("jit-cache-{}", std::process::id()))
}

/// A `mini` command whose JIT cache is the test process's own ([`test_cache_dir`]).
pub fn mini_cmd() -> Command {
    let mut cmd = Command::new(MINI);
    cmd.env("MINI_CACHE_DIR", test_cache_dir());
    cmd
}

/// The text of output bytes, with invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks that a run succeeded and printed `stdout`; returns its stderr.
pub fn assert_ran(out: &Output, stdout: &str) -> String {
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(text(&out.stdout), stdout);
    stderr
}

/// Numbers the scratch directories, so that tests running in parallel use different ones.
static NEXT_SCRATCH: AtomicUsize = AtomicUsize::new(0);

/// A file written to a fresh directory of its own under the tests' temporary directory
/// (`<crate>_<pid>_<n>/<name>`), so that reports name it by `name`; the directory is removed
/// when the value is dropped.
pub struct ScratchFile {
    path: PathBuf,
}

impl ScratchFile {
    pub fn new(name: &str, contents: impl AsRef<[u8]>) -> ScratchFile {
        let n = NEXT_SCRATCH.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{}_{}_{n}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let path = dir.join(name);
        std::fs::File::create(&path).and_then(|mut f| f.write_all(contents.as_ref())).expect("write the file");
        ScratchFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a string, for argument lists and for the locations of reports.
    pub fn as_str(&self) -> &str {
        self.path.to_str().expect("a UTF-8 path")
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs `mini <args>` to its end.
pub fn mini(args: &[&str]) -> Output {
    mini_cmd().args(args).output().expect("run mini")
}

/// A `mini` command with `args`, where the word `FILE` stands for `file`.
pub fn mini_command(args: &[&str], file: &Path) -> Command {
    let mut cmd = mini_cmd();
    for arg in args {
        if *arg == "FILE" {
            cmd.arg(file);
        } else {
            cmd.arg(arg);
        }
    }
    cmd
}

/// Runs `mini <args>` to its end, where the word `FILE` stands for a scratch file `prog.mini`
/// holding `program`.
pub fn mini_on(args: &[&str], program: &str) -> Output {
    let file = ScratchFile::new("prog.mini", program);
    mini_command(args, file.path()).output().expect("run mini")
}

/// The command `mini run <flags> <path>`, with stdout and stderr piped.
pub fn run_command(flags: &[&str], path: &Path) -> Command {
    let mut cmd = mini_cmd();
    cmd.arg("run").args(flags).arg(path).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Starts `mini <args>` with piped stdio and writes `input` to its stdin, which is then closed.
pub fn spawn_with_stdin(args: &[&str], input: &str) -> Child {
    let mut child = mini_cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mini");
    child.stdin.take().expect("a stdin pipe").write_all(input.as_bytes()).expect("write stdin");
    child
}

/// How a run bounded in time ended.
pub struct Finished {
    /// The exit status (that of the kill when `timed_out`) and all the output.
    pub output: Output,
    /// From the call of [`finish`] to the end of the process.
    pub elapsed: Duration,
    /// It outlived its limit and was killed.
    pub timed_out: bool,
}

/// Waits for `child` for at most `limit`, then kills it. Its stdout and stderr, where piped,
/// are read on threads meanwhile, so that a child writing more than a pipe holds cannot stall.
pub fn finish(mut child: Child, limit: Duration) -> Finished {
    let started = Instant::now();
    let stdout = child.stdout.take().map(|s| std::thread::spawn(move || read_all(s)));
    let stderr = child.stderr.take().map(|s| std::thread::spawn(move || read_all(s)));
    let mut pause = Duration::from_micros(100);
    let mut timed_out = false;
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait().expect("wait for mini") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            timed_out = true;
            break child.wait().expect("reap mini");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    let collect = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
        reader.map_or_else(Vec::new, |r| r.join().unwrap_or_default())
    };
    Finished { output: Output { status, stdout: collect(stdout), stderr: collect(stderr) }, elapsed, timed_out }
}

/// Everything `input` yields until its end or a read error.
fn read_all(mut input: impl Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = input.read_to_end(&mut bytes);
    bytes
}

/// [`finish`], failing the test (`what` names the run) when `child` outlives `limit`; returns
/// its output and how long it took to end.
pub fn wait_or_kill(child: Child, limit: Duration, what: &str) -> (Output, Duration) {
    let finished = finish(child, limit);
    assert!(!finished.timed_out, "{what}: mini did not end within {limit:?} (hung)");
    (finished.output, finished.elapsed)
}

/// How long a program runs before [`interrupted_run`] sends SIGINT: the endless loops of the
/// programs start within milliseconds.
pub const HEAD_START: Duration = Duration::from_millis(1500);

/// How long a signalled program may take to end before the test calls it hung.
pub const INTERRUPT_DEADLINE: Duration = Duration::from_secs(20);

/// How long a signalled program may take to end: the specified 200 ms, with room for a loaded
/// test machine (mini itself takes about 100 ms at most: `interrupt::GRACE`).
pub const PROMPT: Duration = Duration::from_millis(1000);

/// Runs `mini run <flags> <program>`, sends SIGINT after [`HEAD_START`], and collects its
/// output; returns it with how long the program took to end after the signal.
#[cfg(unix)]
pub fn interrupted_run(name: &str, flags: &[&str], program: &str) -> (Output, Duration) {
    let file = ScratchFile::new(&format!("{name}.mini"), program);
    let child = run_command(flags, file.path()).spawn().expect("start mini");
    std::thread::sleep(HEAD_START);
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) with the pid of our own child, which has not been waited for yet, so the
    // pid cannot belong to another process.
    let sent = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(sent, 0, "kill(SIGINT) failed");
    wait_or_kill(child, INTERRUPT_DEADLINE, &format!("{name} {flags:?} after Ctrl-C"))
}

/// [`interrupted_run`], failing unless the program ended within [`PROMPT`] of the signal.
#[cfg(unix)]
pub fn interrupted_promptly(name: &str, flags: &[&str], program: &str) -> Output {
    let (out, took) = interrupted_run(name, flags, program);
    let stderr = text(&out.stderr);
    assert!(took < PROMPT, "{name} {flags:?}: mini took {took:?} to end after Ctrl-C; stderr: {stderr}");
    out
}

/// Where an `interrupted` report must point.
pub enum At<'a> {
    /// Nowhere: the report is exactly `error: interrupted` (native code or a thread kept the GIL).
    Nowhere,
    /// At a safe point: the report contains one of these (`.mini:6:1\n`).
    OneOf(&'a [&'a str]),
}

/// Checks a program that printed `started` and was then interrupted: exit code 1, stdout
/// `started`, and the report of [`At`]; `what` names the case in the failure messages.
pub fn assert_interrupted(what: &str, out: &Output, at: At) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{what}: stderr: {stderr}");
    assert_eq!(stdout, "started\n", "{what}");
    match at {
        At::Nowhere => assert_eq!(stderr, "error: interrupted\n", "{what}"),
        At::OneOf(places) => {
            assert!(stderr.starts_with("error: interrupted\n"), "{what}: stderr: {stderr}");
            assert!(places.iter().any(|p| stderr.contains(p)), "{what}: not located at {places:?}: {stderr}");
        }
    }
}

/// Every `.mini` file under `dir`, in its folders too, but not in folders named `fuzz` (the
/// fuzzer's crash inputs, which carry no expectations and which `tests/fuzz.rs` runs itself) or
/// `lib` (modules that the tests beside them import, which are not programs of their own).
pub fn collect_mini_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n == "fuzz" || n == "lib") {
            continue;
        }
        if path.is_dir() {
            collect_mini_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "mini") {
            out.push(path);
        }
    }
}

/// The `mini` binary a harness tests: `MINI_BIN`, or the one cargo builds, as an absolute path
/// (the harnesses run it in other directories).
pub fn mini_bin() -> PathBuf {
    let bin = std::env::var_os("MINI_BIN").map_or_else(|| PathBuf::from(MINI), PathBuf::from);
    std::path::absolute(&bin).expect("MINI_BIN is a usable path")
}

/// The whole number in the environment variable `name`, if it is set; fails on anything else.
pub fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(text.trim().parse().unwrap_or_else(|_| panic!("{name} must be a whole number, not {text:?}")))
}

/// SplitMix64, the generators' source of randomness: the same seed always gives the same
/// numbers. Each harness adds the draws it needs (`below`, `pick`, ...) in an `impl Rng` of
/// its own.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Runs `mini` with `args` on a program given on stdin; returns its stdout and its peak RSS in
/// KiB. The child is reaped with `wait4` rather than `Child::wait`, which does not report its
/// resource usage.
#[allow(clippy::zombie_processes)]
pub fn run_measured(args: &[&str], program: &str) -> (String, i64) {
    let mut child = spawn_with_stdin(args, program);
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("stdout read");
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr read");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for (`Child` is never waited on after
    // this); `status` and `usage` are valid for writes.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "mini failed: {err}\n{program}");
    (out, usage.ru_maxrss)
}
