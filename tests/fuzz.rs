//! Fuzzing harness: feeds `mini` mutated test programs, token soups, deep nestings and edge
//! values, and fails on any panic, abort, signal, hang or exit code other than 0, 1 and 2 (or
//! than its own, for a program that calls `exit`).
//!
//! It runs on stable Rust as an ordinary test (`harness = false`) for a bounded wall time. First it
//! runs every file in `tests/fuzz/` (the regression inputs: each crash the fuzzer ever found, kept
//! as a file named after what it found), then, until the time is up, it makes inputs from a seed:
//!
//! - mutations of every `.mini` file under `tests/` and `examples/`: byte and token deletions,
//!   duplications and long repetitions, splices between programs, swapped tokens, inserted tokens,
//!   truncations, inserted bytes (invalid UTF-8, NULs, control characters), huge and odd numbers,
//!   renamed identifiers, odd string literals, wrapping in deep brackets;
//! - token soups: random sequences of mini's tokens and keywords;
//! - deep nestings of the source (10,000 to 100,000 deep `(`, `[`, `{`, `f()()()`, `a[0][0]`,
//!   `- - -`, `not not`, blocks, `fn`s, `else if` chains, operator chains, very long lines);
//! - deep values built at run time (lists, dicts and closures nested up to a million deep, then
//!   dropped, printed, compared, sent to threads), deep recursion, and edge values (the int limits,
//!   infinities, NaN, odd strings) through every operator and builtin;
//! - threads sharing an array, a list and a dict, doing compiled or interpreted work, failing,
//!   spawning threads, joined once, twice or never;
//! - on some inputs, options that reach other code: `--dump-bytecode`, `--stats`,
//!   `--switch-interval X` (odd values included), `--keep-gil`, `--dump-ir`, `check --jit-report`.
//!
//! Each input runs as `mini check`, then `mini run` in every mode (interpreter, `--jit`,
//! `--jit --jit-threshold 0`), each run in its own process under a time bound and a memory bound
//! (`setrlimit(RLIMIT_AS)`, set between fork and exec; core dumps off). A run fails when:
//!
//! - it is killed by a signal (SIGSEGV, SIGILL, SIGBUS, SIGABRT...), except the abort that
//!   lang-spec/limits.md specifies when the operating system refuses memory (`memory allocation of
//!   N bytes failed`), which is counted and shown, not failed;
//! - it panics (exit code 101, or `panicked` on stderr, including panics the JIT catches), reports
//!   an `internal error` or an `internal JIT error` (the harness sets `MINI_JIT_VERIFY=1`), or exits
//!   with a code other than 0, 1 and 2 (unless its source says `exit`: a program may end with a
//!   code of its own);
//! - it hangs. A program may loop forever legitimately, so a timeout fails only when the program
//!   cannot loop: `mini check` must always end; `mini run` must end when `check` rejected the
//!   program (nothing runs), when the source holds none of `while`, `for`, `fn` and `range` (no
//!   loop, no recursion, no builtin that iterates), and for generated inputs that terminate by
//!   construction. A program that ends in one mode within a fifth of the time bound but times out
//!   in another fails too (a hang of that mode), unless it uses `spawn` or `clock` (its timing may
//!   then differ legitimately). A loopy program that times out in the interpreter is counted as
//!   inconclusive and its other modes are skipped;
//! - `check` rejected the program (exit 1) but `run` did not exit with 1; or a run exits with 1
//!   without an error message located with ` --> file:line:col`; or `run` without options exits
//!   with 2 (a usage error) on a readable file.
//!
//! With `MINI_FUZZ_DIFF=1` it also requires the three modes to agree (stdout, stderr and exit
//! code) on programs that finish and use no threads, clock or arguments; that finds JIT bugs, not
//! crashes, so it is off by default.
//!
//! A failing input is written to `target/fuzz-failures/` (a few per class of failure), and the
//! report names the class, the command that failed and the command that reproduces it. A
//! regression file may start with directives: `# fuzz-flags: F...` adds flags to every `mini run`,
//! `# fuzz-modes: check interp jit eager` restricts the runs (a slow reproducer of a bug shared by
//! all modes runs in one).
//!
//! Environment:
//! - `MINI_FUZZ_SECS` (default 60): total wall time, regression inputs included;
//! - `MINI_FUZZ_SEED` (default: from the clock; always printed): the seed; input N of a seed is
//!   always the same, and `MINI_FUZZ_CASE=N` runs only that input (and no regression input);
//! - `MINI_FUZZ_TIMEOUT` (default 5): seconds each run of `mini` may take;
//! - `MINI_FUZZ_MEM_MB` (default 2048): the address-space limit of each run, in MiB;
//! - `MINI_FUZZ_JOBS` (default: the number of processors): runs of `mini` at once;
//! - `MINI_FUZZ_MINIMIZE=1`: shrink each new class of failure to a small reproducer (by deleting
//!   lines, then tokens, while the same failure recurs) and save it too;
//! - `MINI_FUZZ_DIFF=1`: the mode-agreement oracle above;
//! - `MINI_FUZZ_KEEP=dir`: also write every generated input to `dir` (to read what it makes);
//! - `MINI_BIN`: the `mini` binary (default: the one cargo builds for this test).
//!
//! `cargo test --release --test fuzz` runs it alone; `MINI_FUZZ_SECS=600` runs it longer.

mod common;

#[cfg(unix)]
fn main() {
    fuzz::main();
}

#[cfg(not(unix))]
fn main() {
    println!("fuzz: skipped (the harness needs Unix process limits)");
}

#[cfg(unix)]
mod fuzz {
    use crate::common::{MODES, Rng, collect_mini_files, env_number, mini_bin, test_cache_dir};
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::{Duration, Instant, SystemTime};

    /// Bytes of stdout and of stderr kept from the start, and again from the end, of a run.
    const CAPTURE: usize = 16 << 10;

    /// Inputs saved to `target/fuzz-failures/` per class of failure.
    const SAVED_PER_CLASS: usize = 3;

    /// Attempts the minimizer may make per class of failure, and the time it may take.
    const MINIMIZE_ATTEMPTS: usize = 400;
    const MINIMIZE_TIME: Duration = Duration::from_secs(120);

    // -----------------------------------------------------------------------------------------
    // Configuration and the main loop
    // -----------------------------------------------------------------------------------------

    /// What to run, from the environment (see the module comment).
    struct Config {
        bin: PathBuf,
        root: PathBuf,
        secs: u64,
        seed: u64,
        only_case: Option<u64>,
        timeout: Duration,
        mem_bytes: u64,
        jobs: usize,
        minimize: bool,
        diff: bool,
        keep: Option<PathBuf>,
    }

    impl Config {
        fn from_env() -> Config {
            let clock = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            Config {
                bin: mini_bin(),
                root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
                secs: env_number("MINI_FUZZ_SECS").unwrap_or(60),
                seed: env_number("MINI_FUZZ_SEED").unwrap_or(clock % 1_000_000_007),
                only_case: env_number("MINI_FUZZ_CASE"),
                timeout: Duration::from_secs_f64(env_float("MINI_FUZZ_TIMEOUT").unwrap_or(5.0)),
                mem_bytes: env_number("MINI_FUZZ_MEM_MB").unwrap_or(2048) << 20,
                jobs: env_number("MINI_FUZZ_JOBS").map_or(cores, |n| n.max(1) as usize),
                minimize: env_flag("MINI_FUZZ_MINIMIZE"),
                diff: env_flag("MINI_FUZZ_DIFF"),
                keep: std::env::var_os("MINI_FUZZ_KEEP").map(PathBuf::from),
            }
        }

        fn failure_dir(&self) -> PathBuf {
            self.root.join("target").join("fuzz-failures")
        }
    }

    fn env_float(name: &str) -> Option<f64> {
        let text = std::env::var(name).ok()?;
        Some(text.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number, not {text:?}")))
    }

    fn env_flag(name: &str) -> bool {
        std::env::var_os(name).is_some_and(|v| v != "0" && !v.is_empty())
    }

    /// Whether the command line selects this test: `cargo test -- FILTER` passes FILTER to every
    /// test binary, and the fuzzer runs only when FILTER is part of its name.
    fn selected() -> bool {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|a| a == "--list") {
            println!("fuzz: test");
            return false;
        }
        let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        filters.is_empty() || filters.iter().any(|f| "fuzz".contains(f.as_str()))
    }

    /// Runs the regression inputs, then fuzzes until the time is up; exits 1 on any failure.
    pub fn main() {
        if !selected() {
            return;
        }
        let config = Config::from_env();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(config.secs);
        println!(
            "fuzz: seed {} (reproduce with MINI_FUZZ_SEED={}), {} s, timeout {:?} per run, memory {} MiB, {} jobs",
            config.seed,
            config.seed,
            config.secs,
            config.timeout,
            config.mem_bytes >> 20,
            config.jobs
        );
        let scratch = std::env::temp_dir().join(format!("mini-fuzz-{}", std::process::id()));
        let state = State::new(&config, &scratch);

        // reproducing one input (MINI_FUZZ_CASE) skips the regression inputs
        let regressions = match config.only_case {
            Some(_) => Vec::new(),
            None => regression_cases(&config.root.join("tests").join("fuzz")),
        };
        let regression_count = regressions.len();
        let queue = Mutex::new(regressions.into_iter().enumerate().collect::<Vec<_>>());
        run_workers(&state, |w| {
            loop {
                // the lock must not be held while the input runs
                let next = queue.lock().unwrap().pop();
                let Some((i, case)) = next else { break };
                state.record(w, i as u64, &case, true);
            }
        });
        let after_regressions = started.elapsed();

        let corpus = Corpus::load(&config.root);
        let next = AtomicU64::new(0);
        if let Some(n) = config.only_case {
            let case = make_case(config.seed, n, &corpus);
            println!("fuzz: case {n} is {}", case.name);
            state.record(0, n, &case, false);
        } else {
            run_workers(&state, |w| {
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let case = make_case(config.seed, n, &corpus);
                    state.record(w, n, &case, false);
                }
            });
        }
        let _ = std::fs::remove_dir_all(&scratch);
        state.summary(regression_count, after_regressions, started.elapsed(), corpus.files.len());
        if !state.failures.lock().unwrap().is_empty() {
            std::process::exit(1);
        }
    }

    /// Runs `work(worker)` on `config.jobs` threads, each with its own scratch directory.
    fn run_workers(state: &State, work: impl Fn(usize) + Sync) {
        std::thread::scope(|s| {
            for w in 0..state.config.jobs {
                let work = &work;
                s.spawn(move || work(w));
            }
        });
    }

    // -----------------------------------------------------------------------------------------
    // Shared state: counts, failures and the summary
    // -----------------------------------------------------------------------------------------

    /// One failure of one run.
    #[derive(Clone)]
    struct Crash {
        /// What went wrong, the same for every input that meets the same bug (the class).
        class: String,
        /// The arguments of `mini` that failed, with the file last.
        args: Vec<String>,
        /// An excerpt of the run's stderr, or another explanation.
        detail: String,
    }

    /// A class of failure with the inputs saved for it.
    struct Failure {
        first: Crash,
        case_name: String,
        count: usize,
        saved: Vec<PathBuf>,
    }

    /// What every worker adds to.
    struct State<'a> {
        config: &'a Config,
        scratch: PathBuf,
        cases: AtomicU64,
        runs: AtomicU64,
        inconclusive: AtomicU64,
        oom: AtomicU64,
        slow: AtomicU64,
        exit_codes: Mutex<BTreeMap<String, u64>>,
        kinds: Mutex<BTreeMap<String, u64>>,
        failures: Mutex<BTreeMap<String, Failure>>,
        saved: AtomicUsize,
    }

    impl<'a> State<'a> {
        fn new(config: &'a Config, scratch: &Path) -> State<'a> {
            std::fs::create_dir_all(scratch).expect("create a scratch directory");
            if let Some(keep) = &config.keep {
                std::fs::create_dir_all(keep).expect("create the MINI_FUZZ_KEEP directory");
            }
            State {
                config,
                scratch: scratch.to_path_buf(),
                cases: AtomicU64::new(0),
                runs: AtomicU64::new(0),
                inconclusive: AtomicU64::new(0),
                oom: AtomicU64::new(0),
                slow: AtomicU64::new(0),
                exit_codes: Mutex::new(BTreeMap::new()),
                kinds: Mutex::new(BTreeMap::new()),
                failures: Mutex::new(BTreeMap::new()),
                saved: AtomicUsize::new(0),
            }
        }

        /// Runs one input on worker `w` and records what happened.
        fn record(&self, w: usize, n: u64, case: &Case, regression: bool) {
            let dir = self.scratch.join(format!("w{w}"));
            std::fs::create_dir_all(&dir).expect("create a worker directory");
            if let Some(keep) = &self.config.keep
                && !regression
            {
                let _ = std::fs::write(keep.join(format!("{}-{n}.mini", self.config.seed)), &case.source);
            }
            let report = judge_case(self.config, &dir, case);
            self.cases.fetch_add(1, Ordering::Relaxed);
            self.runs.fetch_add(report.runs, Ordering::Relaxed);
            self.inconclusive.fetch_add(report.inconclusive, Ordering::Relaxed);
            self.oom.fetch_add(report.oom, Ordering::Relaxed);
            self.slow.fetch_add(report.slow, Ordering::Relaxed);
            *self.kinds.lock().unwrap().entry(case.kind().to_string()).or_default() += 1;
            let mut codes = self.exit_codes.lock().unwrap();
            for code in &report.codes {
                *codes.entry(code.clone()).or_default() += 1;
            }
            drop(codes);
            for crash in report.crashes {
                self.fail(&dir, n, case, crash, regression);
            }
        }

        /// Files a failure under its class, saving the input (and, if asked, a minimized one).
        fn fail(&self, dir: &Path, n: u64, case: &Case, crash: Crash, regression: bool) {
            let label = if regression { case.name.clone() } else { format!("seed {} case {n}", self.config.seed) };
            let mut failures = self.failures.lock().unwrap();
            let new = !failures.contains_key(&crash.class);
            let entry = failures.entry(crash.class.clone()).or_insert_with(|| Failure {
                first: crash.clone(),
                case_name: format!("{label} ({})", case.name),
                count: 0,
                saved: Vec::new(),
            });
            entry.count += 1;
            let save = entry.saved.len() < SAVED_PER_CLASS;
            drop(failures);
            if new {
                println!(
                    "fuzz: NEW FAILURE {}\n      input {label} ({}), `mini {}`",
                    crash.class,
                    case.name,
                    crash.args.join(" ")
                );
            }
            if !save {
                return;
            }
            let mut paths = vec![self.save(&crash.class, &case.source, "")];
            if new && self.config.minimize && !regression {
                let small = minimize(self.config, dir, case, &crash);
                paths.push(self.save(&crash.class, &small, "-min"));
            }
            if let Some(f) = self.failures.lock().unwrap().get_mut(&crash.class) {
                f.saved.extend(paths);
            }
        }

        /// Writes an input to `target/fuzz-failures/` under a name made of its class.
        fn save(&self, class: &str, source: &[u8], suffix: &str) -> PathBuf {
            let dir = self.config.failure_dir();
            std::fs::create_dir_all(&dir).expect("create target/fuzz-failures");
            let k = self.saved.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{}-{}-{k}{suffix}.mini", slug(class), self.config.seed));
            std::fs::write(&path, source).expect("save a failing input");
            path
        }

        /// Prints what ran, how fast, how the runs ended and every class of failure.
        fn summary(&self, regressions: usize, regression_time: Duration, total: Duration, corpus: usize) {
            let cases = self.cases.load(Ordering::Relaxed);
            let runs = self.runs.load(Ordering::Relaxed);
            let secs = total.as_secs_f64().max(1e-9);
            println!(
                "fuzz: {regressions} regression inputs in {:.1} s; {} inputs ({corpus} corpus files mutated) and {runs} runs \
                 of mini in {secs:.1} s: {:.1} inputs/s, {:.1} runs/s",
                regression_time.as_secs_f64(),
                cases,
                cases as f64 / secs,
                runs as f64 / secs
            );
            println!("fuzz: inputs by kind: {}", join_counts(&self.kinds.lock().unwrap()));
            println!("fuzz: runs by outcome: {}", join_counts(&self.exit_codes.lock().unwrap()));
            println!(
                "fuzz: {} loopy runs timed out (inconclusive), {} ended only with three times the time (slow, \
                 not failed), {} ran out of memory (allowed abort)",
                self.inconclusive.load(Ordering::Relaxed),
                self.slow.load(Ordering::Relaxed),
                self.oom.load(Ordering::Relaxed)
            );
            let failures = self.failures.lock().unwrap();
            if failures.is_empty() {
                println!("fuzz: no failure (seed {})", self.config.seed);
                return;
            }
            println!("fuzz: {} classes of failure (seed {}):", failures.len(), self.config.seed);
            for (class, f) in failures.iter() {
                println!("\n== {class}: {} runs; first from {}", f.count, f.case_name);
                for path in &f.saved {
                    let shown = path.strip_prefix(&self.config.root).unwrap_or(path);
                    println!(
                        "   reproduce: MINI_JIT_VERIFY=1 target/release/mini {}",
                        reproduce_args(&f.first.args, shown)
                    );
                }
                println!("{}", indent(&f.first.detail));
            }
        }
    }

    fn join_counts(counts: &BTreeMap<String, u64>) -> String {
        counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    }

    /// The failing command line with the saved file in place of the scratch file.
    fn reproduce_args(args: &[String], file: &Path) -> String {
        let mut shown: Vec<String> = args[..args.len() - 1].to_vec();
        shown.push(file.display().to_string());
        shown.join(" ")
    }

    fn indent(text: &str) -> String {
        text.lines().take(12).map(|l| format!("   | {}", truncate_chars(l, 160))).collect::<Vec<_>>().join("\n")
    }

    fn truncate_chars(s: &str, n: usize) -> String {
        if s.chars().count() <= n { s.to_string() } else { s.chars().take(n).collect::<String>() + "..." }
    }

    /// A file-name-friendly form of a class of failure.
    fn slug(class: &str) -> String {
        let mut out = String::new();
        for c in class.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').chars().take(60).collect()
    }

    // -----------------------------------------------------------------------------------------
    // Running mini
    // -----------------------------------------------------------------------------------------

    /// How a run ended.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Status {
        Exit(i32),
        Signal(i32),
        Timeout,
    }

    /// The start and the end of an output stream.
    #[derive(Default, PartialEq, Eq)]
    struct Capture {
        head: Vec<u8>,
        tail: Vec<u8>,
        total: usize,
    }

    impl Capture {
        /// Reads `input` to its end, keeping [`CAPTURE`] bytes of each end.
        fn read_all(mut input: impl Read) -> Capture {
            let mut c = Capture::default();
            let mut buf = vec![0u8; 64 << 10];
            while let Ok(n) = input.read(&mut buf) {
                if n == 0 {
                    break;
                }
                c.push(&buf[..n]);
            }
            c
        }

        fn push(&mut self, bytes: &[u8]) {
            self.total += bytes.len();
            let room = CAPTURE.saturating_sub(self.head.len());
            let (head, rest) = bytes.split_at(room.min(bytes.len()));
            self.head.extend_from_slice(head);
            self.tail.extend_from_slice(rest);
            if self.tail.len() > 2 * CAPTURE {
                self.tail.drain(..self.tail.len() - CAPTURE);
            }
        }

        fn truncated(&self) -> bool {
            self.total > self.head.len() + self.tail.len()
        }

        /// The kept text, lossily decoded.
        fn text(&self) -> String {
            let mut s = String::from_utf8_lossy(&self.head).into_owned();
            if self.truncated() {
                s.push_str("\n[...]\n");
            }
            s.push_str(&String::from_utf8_lossy(&self.tail));
            s
        }
    }

    /// One run of `mini`.
    struct Outcome {
        status: Status,
        stdout: Capture,
        stderr: Capture,
        elapsed: Duration,
    }

    /// Runs `mini ARGS` in `dir` under the time and memory bounds.
    fn run_mini(config: &Config, dir: &Path, args: &[String], timeout: Duration) -> Outcome {
        let mut command = Command::new(&config.bin);
        command
            .args(args)
            .current_dir(dir)
            .env("MINI_CACHE_DIR", test_cache_dir())
            .env("MINI_JIT_VERIFY", "1")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mem = config.mem_bytes;
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe functions may be called: it calls setrlimit only, allocates nothing
        // and touches no state shared with the parent's other threads.
        unsafe {
            command.pre_exec(move || limit_resources(mem));
        }
        let started = Instant::now();
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", config.bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let out_reader = std::thread::spawn(move || Capture::read_all(stdout));
        let err_reader = std::thread::spawn(move || Capture::read_all(stderr));
        let status = wait_bounded(&mut child, timeout);
        let elapsed = started.elapsed();
        Outcome {
            status,
            stdout: out_reader.join().unwrap_or_default(),
            stderr: err_reader.join().unwrap_or_default(),
            elapsed,
        }
    }

    /// In the child before exec: bounds its address space and disables core dumps.
    fn limit_resources(mem: u64) -> std::io::Result<()> {
        for (resource, value) in [(libc::RLIMIT_AS, mem), (libc::RLIMIT_CORE, 0)] {
            let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
            // SAFETY: `limit` is a valid, initialized rlimit that outlives the call.
            if unsafe { libc::setrlimit(resource, &limit) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Waits for `child`, polling with a growing pause; kills it after `timeout`.
    fn wait_bounded(child: &mut Child, timeout: Duration) -> Status {
        let started = Instant::now();
        let mut pause = Duration::from_micros(100);
        loop {
            if let Some(status) = child.try_wait().expect("wait for mini") {
                return match (status.code(), status.signal()) {
                    (Some(code), _) => Status::Exit(code),
                    (None, Some(sig)) => Status::Signal(sig),
                    (None, None) => Status::Exit(-1),
                };
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Status::Timeout;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Judging runs
    // -----------------------------------------------------------------------------------------

    /// What one run means for the fuzzer.
    enum Verdict {
        Fine,
        /// The allowed abort when memory runs out (lang-spec/limits.md).
        OutOfMemory,
        TimedOut,
        Crashed(String),
    }

    fn signal_name(sig: i32) -> String {
        let name = match sig {
            libc::SIGABRT => "SIGABRT",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGILL => "SIGILL",
            libc::SIGBUS => "SIGBUS",
            libc::SIGFPE => "SIGFPE",
            libc::SIGKILL => "SIGKILL",
            libc::SIGTRAP => "SIGTRAP",
            libc::SIGPIPE => "SIGPIPE",
            _ => return format!("signal {sig}"),
        };
        name.to_string()
    }

    /// The source location of a Rust panic in `stderr` (`src/vm/ops.rs:12:5`), if any.
    fn panic_site(stderr: &str) -> Option<String> {
        let at = stderr.find("panicked at ")? + "panicked at ".len();
        let site: String = stderr[at..].chars().take_while(|c| !c.is_whitespace()).collect();
        Some(site.trim_end_matches(':').to_string())
    }

    /// The first line of `stderr` that contains `needle`, trimmed.
    fn line_with(stderr: &str, needle: &str) -> String {
        stderr.lines().find(|l| l.contains(needle)).map_or_else(String::new, |l| truncate_chars(l.trim(), 100))
    }

    /// Classifies a finished (or killed) run; the class names the phase (`check` or `run`).
    fn verdict(phase: &str, o: &Outcome, exits: bool) -> Verdict {
        let err = o.stderr.text();
        if let Some(site) = panic_site(&err) {
            return Verdict::Crashed(format!("{phase}: panic at {site}"));
        }
        match o.status {
            Status::Timeout => return Verdict::TimedOut,
            Status::Signal(sig) if sig == libc::SIGABRT && err.contains("memory allocation of") => {
                return Verdict::OutOfMemory;
            }
            Status::Signal(sig) if err.contains("has overflowed its stack") => {
                return Verdict::Crashed(format!("{phase}: Rust stack overflow ({})", signal_name(sig)));
            }
            Status::Signal(sig) => return Verdict::Crashed(format!("{phase}: killed by {}", signal_name(sig))),
            Status::Exit(101) => return Verdict::Crashed(format!("{phase}: exit code 101 (panic)")),
            // a program may end with its own code (`exit(79)`)
            Status::Exit(code) if !(0..=2).contains(&code) && !exits => {
                return Verdict::Crashed(format!("{phase}: exit code {code}"));
            }
            Status::Exit(_) => {}
        }
        for needle in ["internal error", "internal JIT error", "fatal runtime error"] {
            if err.contains(needle) {
                return Verdict::Crashed(format!("{phase}: {}", line_with(&err, needle)));
            }
        }
        let located = err.contains("error: ") && err.contains(" --> ");
        if o.status == Status::Exit(1) && !located && !o.stderr.truncated() {
            return Verdict::Crashed(format!("{phase}: exit code 1 without a located error message"));
        }
        Verdict::Fine
    }

    fn status_label(o: &Outcome) -> String {
        match o.status {
            Status::Exit(c) => format!("exit {c}"),
            Status::Signal(s) => signal_name(s),
            Status::Timeout => "timeout".to_string(),
        }
    }

    /// The crash report of a run: its class, the command and the end of its stderr.
    fn crash(class: String, args: &[String], o: &Outcome) -> Crash {
        let err = o.stderr.text();
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let detail = format!(
            "{} after {:.2} s; stderr ({} bytes) ends:\n{}",
            status_label(o),
            o.elapsed.as_secs_f64(),
            o.stderr.total,
            lines[lines.len().saturating_sub(8)..].join("\n")
        );
        Crash { class, args: args.to_vec(), detail }
    }

    /// What running one input found.
    #[derive(Default)]
    struct CaseReport {
        runs: u64,
        inconclusive: u64,
        oom: u64,
        /// Runs that timed out but ended when given three times the time.
        slow: u64,
        codes: Vec<String>,
        crashes: Vec<Crash>,
    }

    /// Whether the source can loop or recurse: it names `while`, `for`, `fn` or `range` (a
    /// builtin that iterates over a range, such as `max(range(n))`, can run for ages), or may
    /// legitimately run as long as it asks: `sleep` (a mutated `sleep(1e9)`).
    fn can_loop(source: &[u8]) -> bool {
        let text = String::from_utf8_lossy(source);
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| matches!(w, "while" | "for" | "fn" | "range" | "sleep"))
    }

    /// Whether the program's timing may legitimately differ between modes or runs.
    fn timing_dependent(source: &[u8]) -> bool {
        let text = String::from_utf8_lossy(source);
        ["spawn", "clock", "cpu_count", "args"].iter().any(|w| text.contains(w))
    }

    /// Runs `check`, then `run` in every mode, and applies the rules of the module comment.
    fn judge_case(config: &Config, dir: &Path, case: &Case) -> CaseReport {
        let file = "case.mini".to_string();
        std::fs::write(dir.join(&file), &case.source).expect("write the input");
        let mut report = CaseReport::default();
        let loopy = !case.bounded && can_loop(&case.source);
        let mut rejected = false;
        if case.modes.contains(&"check") {
            let mut args = vec!["check".to_string()];
            args.extend(case.check_flags.iter().cloned());
            args.push(file.clone());
            let o = run_confirmed(config, dir, &args, true, &mut report);
            rejected = o.status == Status::Exit(1);
            note(&mut report, "check", &args, &o, true, case);
        }
        let mut finished: Vec<(&str, Outcome)> = Vec::new();
        let mut timed_out: Vec<(&str, Vec<String>)> = Vec::new();
        for (mode, flags) in MODES.iter().filter(|(m, _)| case.modes.contains(m)) {
            let mut args = vec!["run".to_string()];
            args.extend(case.flags.iter().cloned());
            args.extend(flags.iter().map(|f| f.to_string()));
            if *mode != "interp" {
                args.extend(case.jit_flags.iter().cloned());
            }
            args.push(file.clone());
            let fast_elsewhere = finished.iter().any(|(_, o)| o.elapsed * 5 <= config.timeout);
            let o = run_confirmed(config, dir, &args, rejected || !loopy || fast_elsewhere, &mut report);
            note(&mut report, "run", &args, &o, rejected || !loopy, case);
            if o.status == Status::Exit(2) && case.flags.is_empty() && case.jit_flags.is_empty() {
                let class = "run: usage error (exit code 2) without options, for a readable file".to_string();
                report.crashes.push(crash(class, &args, &o));
            }
            let interval_flag = case.flags.iter().any(|f| f == "--switch-interval");
            if rejected && !interval_flag && matches!(o.status, Status::Exit(0 | 2)) {
                let class = format!("run: check rejects the program but run ends with {}", status_label(&o));
                report.crashes.push(crash(class, &args, &o));
            }
            if o.status == Status::Timeout {
                timed_out.push((mode, args));
                if loopy && !rejected && *mode == "interp" {
                    break;
                }
            } else {
                finished.push((mode, o));
            }
        }
        if loopy && !rejected && !timing_dependent(&case.source) {
            mode_hangs(config, &finished, &timed_out, &mut report);
        }
        let plain = case.flags.is_empty() && case.jit_flags.is_empty() && report.crashes.is_empty() && report.oom == 0;
        if config.diff && plain && timed_out.is_empty() && !timing_dependent(&case.source) {
            disagreements(&finished, &mut report);
        }
        report
    }

    /// Runs `mini ARGS`; when a run that matters times out, runs it again with three times the
    /// time, so that a loaded machine does not pass for a hang.
    fn run_confirmed(config: &Config, dir: &Path, args: &[String], matters: bool, report: &mut CaseReport) -> Outcome {
        let o = run_mini(config, dir, args, config.timeout);
        if o.status != Status::Timeout || !matters {
            return o;
        }
        report.runs += 1;
        let again = run_mini(config, dir, args, config.timeout * 3);
        if again.status != Status::Timeout {
            report.slow += 1;
        }
        again
    }

    /// Whether a program may call `exit` with a code of its own.
    fn calls_exit(source: &[u8]) -> bool {
        String::from_utf8_lossy(source).contains("exit")
    }

    /// Counts a run of `case` and files its failure, if any; `must_end` makes a timeout a
    /// failure. Panics are told apart by their site; other crashes and hangs also by the input's
    /// shape.
    fn note(report: &mut CaseReport, phase: &str, args: &[String], o: &Outcome, must_end: bool, case: &Case) {
        report.runs += 1;
        report.codes.push(format!("{phase} {}", status_label(o)));
        let shape = &case.shape();
        match verdict(phase, o, calls_exit(&case.source)) {
            Verdict::Fine => {}
            Verdict::OutOfMemory => report.oom += 1,
            Verdict::TimedOut if must_end => {
                let command = args[..args.len() - 1].join(" ");
                let class = format!("{command}: hang (the program cannot loop, or check rejected it) in {shape}");
                report.crashes.push(crash(class, args, o));
            }
            Verdict::TimedOut => report.inconclusive += 1,
            Verdict::Crashed(class) if class.contains(": panic at ") => report.crashes.push(crash(class, args, o)),
            Verdict::Crashed(class) => report.crashes.push(crash(format!("{class} in {shape}"), args, o)),
        }
    }

    /// A loopy program that ends quickly in one mode must not time out in another.
    fn mode_hangs(
        config: &Config,
        finished: &[(&str, Outcome)],
        timed_out: &[(&str, Vec<String>)],
        report: &mut CaseReport,
    ) {
        let Some((fast_mode, fast)) = finished.iter().min_by_key(|(_, o)| o.elapsed) else { return };
        if fast.elapsed * 5 > config.timeout {
            return;
        }
        for (mode, args) in timed_out {
            let detail = format!("timed out, while mode {fast_mode} ended in {:.2} s", fast.elapsed.as_secs_f64());
            report.crashes.push(Crash { class: format!("run: hang in mode {mode} only"), args: args.clone(), detail });
        }
    }

    /// With `MINI_FUZZ_DIFF`: every mode must give the interpreter's stdout, stderr and status.
    fn disagreements(finished: &[(&str, Outcome)], report: &mut CaseReport) {
        let Some(((_, first), rest)) = finished.split_first() else { return };
        if first.stdout.truncated() || first.stderr.truncated() {
            return;
        }
        for (mode, o) in rest {
            let same = o.status == first.status && o.stdout == first.stdout && o.stderr == first.stderr;
            if !same {
                let what = if o.status != first.status {
                    "status"
                } else if o.stdout != first.stdout {
                    "stdout"
                } else {
                    "stderr"
                };
                let detail = format!(
                    "interp: {}, {mode}: {}\n--- interp stdout/stderr:\n{}{}\n--- {mode} stdout/stderr:\n{}{}",
                    status_label(first),
                    status_label(o),
                    tail_lines(&first.stdout.text(), 5),
                    tail_lines(&first.stderr.text(), 5),
                    tail_lines(&o.stdout.text(), 5),
                    tail_lines(&o.stderr.text(), 5)
                );
                let mut args = vec!["run".to_string()];
                args.extend(
                    MODES.iter().find(|(m, _)| m == mode).map_or(&[][..], |(_, f)| f).iter().map(|f| f.to_string()),
                );
                args.push("case.mini".to_string());
                report.crashes.push(Crash {
                    class: format!("diff: {mode} differs from interp in {what}"),
                    args,
                    detail,
                });
            }
        }
    }

    fn tail_lines(text: &str, n: usize) -> String {
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("{}\n", truncate_chars(l, 150))).collect()
    }

    // -----------------------------------------------------------------------------------------
    // Minimizing a failing input
    // -----------------------------------------------------------------------------------------

    /// Shrinks `case`'s source while the command of `crash` still fails with the same class:
    /// deletes chunks of lines, then of tokens, halving the chunk size down to one.
    fn minimize(config: &Config, dir: &Path, case: &Case, crash: &Crash) -> Vec<u8> {
        let mut attempts = 0;
        let mut best = case.source.clone();
        let deadline = Instant::now() + MINIMIZE_TIME;
        let reproduces = |source: &[u8], attempts: &mut usize| -> bool {
            *attempts += 1;
            if Instant::now() > deadline {
                *attempts = MINIMIZE_ATTEMPTS;
                return false;
            }
            let probe = Case { source: source.to_vec(), ..case.clone() };
            std::fs::write(dir.join("min.mini"), source).expect("write a probe");
            still_fails(config, dir, &probe, crash)
        };
        for split in [split_lines as fn(&[u8]) -> Vec<(usize, usize)>, split_tokens] {
            let mut chunk = split(&best).len().div_ceil(2).max(1);
            while chunk >= 1 && attempts < MINIMIZE_ATTEMPTS {
                let pieces = split(&best);
                let mut i = 0;
                let mut shrunk = false;
                while i < pieces.len() && attempts < MINIMIZE_ATTEMPTS {
                    let end = (i + chunk).min(pieces.len());
                    let candidate = [&best[..pieces[i].0], &best[pieces[end - 1].1..]].concat();
                    if candidate.len() < best.len() && reproduces(&candidate, &mut attempts) {
                        best = candidate;
                        shrunk = true;
                        break;
                    }
                    i += chunk;
                }
                if !shrunk {
                    if chunk == 1 {
                        break;
                    }
                    chunk /= 2;
                }
            }
        }
        best
    }

    /// Whether `probe` (already written to `min.mini`) fails `crash`'s command the same way.
    fn still_fails(config: &Config, dir: &Path, probe: &Case, crash: &Crash) -> bool {
        let mut args = crash.args.clone();
        *args.last_mut().expect("a file argument") = "min.mini".to_string();
        if crash.class.contains("check rejects")
            || crash.class.contains("hang in mode")
            || crash.class.starts_with("diff:")
        {
            return judge_case(config, dir, probe).crashes.iter().any(|c| c.class == crash.class);
        }
        let o = run_mini(config, dir, &args, config.timeout);
        let phase = if args[0] == "check" { "check" } else { "run" };
        let must_end = !can_loop(&probe.source) || probe.bounded || {
            let check = vec!["check".to_string(), "min.mini".to_string()];
            run_mini(config, dir, &check, config.timeout).status == Status::Exit(1)
        };
        let mut report = CaseReport::default();
        note(&mut report, phase, &args, &o, must_end, probe);
        report.crashes.iter().any(|c| c.class == crash.class)
    }

    /// The byte ranges of the lines of `source`, each with its newline.
    fn split_lines(source: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, &b) in source.iter().enumerate() {
            if b == b'\n' {
                out.push((start, i + 1));
                start = i + 1;
            }
        }
        if start < source.len() {
            out.push((start, source.len()));
        }
        out
    }

    /// The byte ranges of the tokens of `source`, roughly as mini's lexer cuts it: words and
    /// numbers, strings, comments, runs of blanks, operators, and any other single byte.
    fn split_tokens(source: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < source.len() {
            let end = token_end(source, i);
            out.push((i, end));
            i = end;
        }
        out
    }

    fn token_end(s: &[u8], i: usize) -> usize {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
        let run = |pred: &dyn Fn(u8) -> bool| i + s[i..].iter().take_while(|&&b| pred(b)).count();
        match s[i] {
            b if word(b) => {
                let mut end = run(&word);
                if s[i].is_ascii_digit() && s.get(end) == Some(&b'.') {
                    end += 1 + s[end + 1..].iter().take_while(|&&b| word(b)).count();
                }
                end
            }
            b' ' | b'\t' | b'\r' => run(&|b| b == b' ' || b == b'\t' || b == b'\r'),
            b'#' => run(&|b| b != b'\n'),
            b'"' => {
                let mut j = i + 1;
                while j < s.len() && s[j] != b'"' && s[j] != b'\n' {
                    j += if s[j] == b'\\' { 2 } else { 1 };
                }
                (j + 1).min(s.len())
            }
            _ => {
                let ops: [&[u8]; 15] = [
                    b"//=", b"**", b"//", b"==", b"!=", b"<=", b">=", b"+=", b"-=", b"*=", b"/=", b"%=", b"()", b"[]",
                    b"{}",
                ];
                let op = ops.iter().find(|op| s[i..].starts_with(op));
                i + op.map_or(1, |op| op.len())
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Inputs
    // -----------------------------------------------------------------------------------------

    /// One input and how to run it.
    #[derive(Clone)]
    struct Case {
        /// What made it (`mutate tests/lists/push.mini`, `nest calls 30000`, ...).
        name: String,
        source: Vec<u8>,
        /// Whether it ends by construction, so that a timeout is a failure even if it loops.
        bounded: bool,
        /// Extra flags of every `mini run`, of the `--jit` runs only, and of `mini check`.
        flags: Vec<String>,
        jit_flags: Vec<String>,
        check_flags: Vec<String>,
        /// Which of `check`, `interp`, `jit`, `eager` to run.
        modes: Vec<&'static str>,
    }

    impl Case {
        fn new(name: String, source: Vec<u8>, bounded: bool) -> Case {
            let modes = vec!["check", "interp", "jit", "eager"];
            Case { name, source, bounded, flags: Vec::new(), jit_flags: Vec::new(), check_flags: Vec::new(), modes }
        }

        /// The generator that made it (the first word of its name).
        fn kind(&self) -> &str {
            self.name.split_whitespace().next().unwrap_or("?")
        }

        /// What sort of input it is, finer than [`Case::kind`]: the shape of a nesting or of a
        /// deep value, the regression file; it tells apart stack overflows and hangs that the
        /// run alone does not.
        fn shape(&self) -> String {
            match self.kind() {
                "nest" | "deep" | "regression" => self.name.split_whitespace().take(2).collect::<Vec<_>>().join(" "),
                kind => kind.to_string(),
            }
        }
    }

    /// The regression inputs in `dir`, with the directives of their first lines.
    fn regression_cases(dir: &Path) -> Vec<Case> {
        let mut files = Vec::new();
        collect_mini_files(dir, &mut files);
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let source = std::fs::read(&path).expect("read a regression input");
                let name = format!("regression {}", path.file_name().unwrap_or_default().to_string_lossy());
                let mut case = Case::new(name, source, true);
                apply_directives(&mut case);
                case
            })
            .collect()
    }

    /// Reads `# fuzz-flags:` and `# fuzz-modes:` lines.
    fn apply_directives(case: &mut Case) {
        let text = String::from_utf8_lossy(&case.source).into_owned();
        for line in text.lines() {
            if let Some(flags) = line.strip_prefix("# fuzz-flags:") {
                case.flags = flags.split_whitespace().map(String::from).collect();
            } else if let Some(modes) = line.strip_prefix("# fuzz-modes:") {
                let wanted: Vec<&str> = modes.split_whitespace().collect();
                case.modes.retain(|m| wanted.contains(m));
            }
        }
    }

    /// The programs to mutate: every `.mini` under `tests/` (but `tests/fuzz/`) and `examples/`.
    struct Corpus {
        files: Vec<(String, Vec<u8>)>,
    }

    impl Corpus {
        fn load(root: &Path) -> Corpus {
            let mut paths = Vec::new();
            collect_mini_files(&root.join("tests"), &mut paths);
            // (leaves out `tests/fuzz/`, the regression inputs)
            collect_mini_files(&root.join("examples"), &mut paths);
            paths.sort();
            let files = paths
                .into_iter()
                .filter_map(|p| {
                    let name = p.strip_prefix(root).unwrap_or(&p).display().to_string();
                    std::fs::read(&p).ok().map(|bytes| (name, bytes))
                })
                .collect::<Vec<_>>();
            assert!(!files.is_empty(), "no .mini files under tests/ and examples/");
            Corpus { files }
        }
    }

    /// The draws of the input generators from the shared SplitMix64 generator: the same seed
    /// always gives the same inputs.
    impl Rng {
        /// A number in `0..n` (`n > 0`).
        fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }

        fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
            &items[self.below(items.len())]
        }

        /// A size, usually small, sometimes up to `max`.
        fn size(&mut self, max: usize) -> usize {
            let bits = self.below(usize::BITS as usize - max.leading_zeros() as usize + 1);
            self.below((1usize << bits).min(max) + 1)
        }
    }

    /// Input `n` of seed `seed`.
    fn make_case(seed: u64, n: u64, corpus: &Corpus) -> Case {
        let mut rng = Rng::new(seed ^ n.wrapping_mul(0xD134_2543_DE82_EF95));
        rng.next_u64();
        let mut case = match rng.below(100) {
            0..=46 => mutate_case(&mut rng, corpus),
            47..=57 => soup_case(&mut rng),
            58..=71 => nest_case(&mut rng),
            72..=81 => deep_value_case(&mut rng),
            82..=89 => thread_case(&mut rng),
            _ => edge_case(&mut rng),
        };
        if rng.chance(15) {
            add_flags(&mut rng, &mut case);
        }
        if rng.chance(25) && case.check_flags.is_empty() {
            // the JIT's type inference then runs over every function, not only hot ones
            case.check_flags.push("--jit-report".to_string());
        }
        case
    }

    /// Values of `--switch-interval` (milliseconds), odd ones included.
    const INTERVALS: &[&str] = &["5", "0.001", "1e-300", "5e-324", "1e15", "1e17", "1e19", "1e23", "0", "-1", "nan"];

    /// Adds command-line options that reach other code: the disassembler, the statistics, the
    /// JIT's reports, the GIL's switch interval and `--keep-gil`.
    fn add_flags(rng: &mut Rng, case: &mut Case) {
        let mut added = Vec::new();
        for flag in ["--dump-bytecode", "--stats"] {
            if rng.chance(40) {
                case.flags.push(flag.to_string());
                added.push(flag.to_string());
            }
        }
        if rng.chance(30) {
            let interval = *rng.pick(INTERVALS);
            case.flags.extend(["--switch-interval".to_string(), interval.to_string()]);
            added.push(format!("--switch-interval {interval}"));
        }
        for flag in ["--keep-gil", "--dump-ir"] {
            if rng.chance(40) {
                case.jit_flags.push(flag.to_string());
                added.push(flag.to_string());
            }
        }
        if rng.chance(40) {
            case.check_flags.push("--jit-report".to_string());
            added.push("--jit-report".to_string());
        }
        case.name = format!("{} (flags {})", case.name, added.join(" "));
    }

    // -----------------------------------------------------------------------------------------
    // Mutations
    // -----------------------------------------------------------------------------------------

    /// Odd numbers to put in place of literals.
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "-1",
        "255",
        "2147483647",
        "2147483648",
        "4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "99999999999999999999999999",
        "0x7fffffffffffffff",
        "0x8000000000000000",
        "0xffffffffffffffffff",
        "0x",
        "0x_",
        "1_",
        "1__0",
        "00",
        "1e308",
        "1e309",
        "1e-400",
        "4.9e-324",
        "1.7976931348623157e308",
        "0.1",
        "1.",
        "1e",
        "1e+",
        "-0.0",
        "(-9223372036854775807 - 1)",
        "(1e308 * 10)",
        "(1e308 * 10 - 1e308 * 10)",
        "2 ** 62",
        "2 ** 63",
        "1000000000",
        "100000000000",
    ];

    /// Odd string literals.
    const STRINGS: &[&str] = &[
        "\"\"",
        "\"a\"",
        "\"\\n\"",
        "\"\\0\"",
        "\"\\q\"",
        "\"\\\"",
        "\"abc",
        "\"\\u{41}\"",
        "\"é€😀\"",
        "\"e\u{301}\"",
        "\"a\\\"b\\nc\"",
        "\"9223372036854775808\"",
        "\"-9223372036854775808\"",
        "\" 12 \"",
        "\"1e400\"",
        "\"nan\"",
        "\"-inf\"",
        "\"0x10\"",
        "\"1_000\"",
        "\"\u{2028}\"",
    ];

    /// The tokens of mini, and names it knows, for soups and insertions.
    const TOKENS: &[&str] = &[
        "fn",
        "let",
        "if",
        "else",
        "while",
        "for",
        "in",
        "break",
        "continue",
        "return",
        "and",
        "or",
        "not",
        "true",
        "false",
        "nil",
        "import",
        "import \"m.mini\"",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        ";",
        ".",
        ".x",
        "=",
        "+=",
        "-=",
        "*=",
        "/=",
        "//=",
        "%=",
        "+",
        "-",
        "*",
        "/",
        "//",
        "%",
        "**",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "\n",
        "\n",
        "\n",
        "x",
        "y",
        "f",
        "g",
        "a",
        "l",
        "d",
        "i",
        "print",
        "len",
        "str",
        "int",
        "float",
        "type",
        "range",
        "push",
        "pop",
        "keys",
        "has",
        "remove",
        "array",
        "sqrt",
        "floor",
        "ceil",
        "abs",
        "min",
        "max",
        "clock",
        "spawn",
        "join",
        "args",
        "cpu_count",
        "assert",
        "exp",
        "log",
        "sin",
        "0",
        "1",
        "2",
        "1.5",
        "\"s\"",
        "# c\n",
        "!",
        "@",
        "$",
        "`",
        "'",
        ".",
        "?",
        "\\",
        "&",
        "|",
        "^",
        "~",
    ];

    /// Raw byte sequences, most of them not valid UTF-8 or not valid in mini.
    const BYTES: &[&[u8]] = &[
        b"\xff",
        b"\xfe",
        b"\xc0\x80",
        b"\xc3",
        b"\x80",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xf0\x9f\x98",
        b"\0",
        b"\x0b",
        b"\x0c",
        b"\r",
        b"\r\n",
        b"\t",
        b"\x1b[31m",
        b"\xef\xbb\xbf",
        b"\xe2\x80\xa8",
        b"\xc2\xa0",
        "é".as_bytes(),
        "😀".as_bytes(),
        b"\x7f",
    ];

    /// A corpus file changed by one to four mutations.
    fn mutate_case(rng: &mut Rng, corpus: &Corpus) -> Case {
        let (name, original) = rng.pick(&corpus.files);
        let mut source = original.clone();
        let mut done = Vec::new();
        for _ in 0..1 + rng.size(3) {
            let what = mutate(rng, &mut source, corpus);
            done.push(what);
        }
        Case::new(format!("mutate {name} [{}]", done.join(", ")), source, false)
    }

    /// About the most bytes one repeating mutation adds.
    const REPEAT_BYTES: usize = 1 << 20;

    /// Applies one random mutation to `s`; returns its name.
    fn mutate(rng: &mut Rng, s: &mut Vec<u8>, corpus: &Corpus) -> &'static str {
        let toks = split_tokens(s);
        if toks.is_empty() {
            s.extend_from_slice(rng.pick(TOKENS).as_bytes());
            return "insert token";
        }
        let t = toks[rng.below(toks.len())];
        let u = toks[rng.below(toks.len())];
        let (lo, hi) = (t.0.min(u.0), t.1.max(u.1));
        let at = rng.below(s.len() + 1);
        match rng.below(17) {
            0 => {
                let n = 1 + rng.size(16);
                let end = (at + n).min(s.len());
                s.drain(at..end);
                "delete bytes"
            }
            1 => {
                s.drain(t.0..t.1);
                "delete token"
            }
            2 => {
                let end = (lo + rng.size(hi - lo)).max(lo + 1).min(hi);
                s.drain(lo..end);
                "delete tokens"
            }
            3 => {
                let piece = s[t.0..t.1].to_vec();
                splice_at(s, t.1, &piece);
                "duplicate token"
            }
            4 => {
                let piece = s[lo..hi.min(lo + 400)].to_vec();
                let times = 1 + rng.size(if piece.len() < 8 { 100_000 } else { 2000 });
                splice_at(s, hi.min(lo + 400), &piece.repeat(times));
                "repeat tokens"
            }
            5 => {
                let (_, other) = rng.pick(&corpus.files);
                let cut = rng.below(other.len() + 1);
                s.truncate(at);
                s.extend_from_slice(&other[cut..]);
                "splice"
            }
            6 => {
                let (_, other) = rng.pick(&corpus.files);
                let a = rng.below(other.len() + 1);
                let b = (a + rng.size(300)).min(other.len());
                splice_at(s, at, &other[a..b]);
                "insert from another program"
            }
            7 => {
                swap_tokens(s, t, u);
                "swap tokens"
            }
            8 => {
                let tok = rng.pick(TOKENS).as_bytes().to_vec();
                let pad = [b" ".as_slice(), &tok, b" "].concat();
                splice_at(s, t.0, &pad);
                "insert token"
            }
            9 => {
                s.truncate(at);
                "truncate"
            }
            10 => {
                let bytes = rng.pick(BYTES).to_vec();
                splice_at(s, at, &bytes);
                "insert bytes"
            }
            11 => {
                let b = s.get(at).copied().unwrap_or(b' ');
                if at < s.len() {
                    s[at] = b ^ (1 << rng.below(8));
                }
                "flip bit"
            }
            12 => replace_kind(rng, s, &toks, |b| b.is_ascii_digit(), NUMBERS, "huge number"),
            13 => replace_kind(rng, s, &toks, |b| b == b'"', STRINGS, "odd string"),
            14 => {
                let names: Vec<(usize, usize)> =
                    toks.iter().copied().filter(|&(a, _)| s[a].is_ascii_alphabetic() || s[a] == b'_').collect();
                if names.is_empty() {
                    return "rename (none)";
                }
                let from = names[rng.below(names.len())];
                let to = names[rng.below(names.len())];
                let word = s[to.0..to.1].to_vec();
                s.splice(from.0..from.1, word);
                "rename"
            }
            15 => {
                let depth = 1 + rng.size(50_000);
                let (open, close) = *rng.pick(&[("(", ")"), ("[", "]"), ("{", "}"), ("-", ""), ("not ", "")]);
                let inner = s[t.0..t.1].to_vec();
                let wrapped = [open.repeat(depth).into_bytes(), inner, close.repeat(depth).into_bytes()].concat();
                s.splice(t.0..t.1, wrapped);
                "wrap deep"
            }
            _ => {
                let line = split_lines(s);
                let l = line[rng.below(line.len())];
                let piece = s[l.0..l.1].to_vec();
                // at most about `REPEAT_BYTES` more, as "repeat tokens" adds: a nested case's
                // one line is ~1 MB, and 5000 of it made a 4 GB input that mini rightly could
                // not read under the runs' memory limit
                let times = 1 + rng.size(5000).min(REPEAT_BYTES / piece.len().max(1));
                splice_at(s, l.1, &piece.repeat(times));
                "repeat line"
            }
        }
    }

    fn splice_at(s: &mut Vec<u8>, at: usize, piece: &[u8]) {
        s.splice(at..at, piece.iter().copied());
    }

    /// Swaps two tokens given by their byte ranges.
    fn swap_tokens(s: &mut Vec<u8>, t: (usize, usize), u: (usize, usize)) {
        let (first, second) = if t.0 <= u.0 { (t, u) } else { (u, t) };
        if first.1 > second.0 {
            return;
        }
        let a = s[first.0..first.1].to_vec();
        let b = s[second.0..second.1].to_vec();
        s.splice(second.0..second.1, a);
        s.splice(first.0..first.1, b);
    }

    /// Replaces a token whose first byte satisfies `is_kind` by one of `choices`.
    fn replace_kind(
        rng: &mut Rng,
        s: &mut Vec<u8>,
        toks: &[(usize, usize)],
        is_kind: fn(u8) -> bool,
        choices: &[&str],
        what: &'static str,
    ) -> &'static str {
        let found: Vec<(usize, usize)> = toks.iter().copied().filter(|&(a, _)| is_kind(s[a])).collect();
        if found.is_empty() {
            return what;
        }
        let (a, b) = found[rng.below(found.len())];
        s.splice(a..b, rng.pick(choices).bytes());
        what
    }

    // -----------------------------------------------------------------------------------------
    // Token soups
    // -----------------------------------------------------------------------------------------

    /// A random sequence of tokens; sometimes with its brackets closed, so that it parses further.
    fn soup_case(rng: &mut Rng) -> Case {
        let n = 1 + rng.size(300);
        let mut out = String::new();
        let mut open = Vec::new();
        let balance = rng.chance(50);
        for _ in 0..n {
            let tok = if rng.chance(10) {
                *rng.pick(NUMBERS)
            } else if rng.chance(5) {
                *rng.pick(STRINGS)
            } else {
                *rng.pick(TOKENS)
            };
            match tok {
                "(" => open.push(")"),
                "[" => open.push("]"),
                "{" => open.push("}"),
                ")" | "]" | "}" if balance => match open.pop() {
                    Some(close) => {
                        out.push_str(close);
                        out.push(' ');
                        continue;
                    }
                    None => continue,
                },
                _ => {}
            }
            out.push_str(tok);
            out.push(' ');
        }
        if balance {
            while let Some(close) = open.pop() {
                out.push_str(close);
            }
        }
        Case::new(format!("soup {n} tokens"), out.into_bytes(), false)
    }

    // -----------------------------------------------------------------------------------------
    // Deep nestings of the source
    // -----------------------------------------------------------------------------------------

    /// Depths around the parser's limit (200) and far beyond it.
    const DEPTHS: &[usize] = &[2, 150, 199, 200, 201, 1000, 5000, 10_000, 30_000, 100_000];

    /// The shapes of deep source nesting: (name, function from depth to program).
    /// A shape of nesting: its name, and the program of a given depth.
    type Nest = (&'static str, fn(usize) -> String);

    const NESTS: &[Nest] = &[
        ("parens", |d| format!("print({}1{})", "(".repeat(d), ")".repeat(d))),
        ("unclosed-parens", |d| format!("print({}1", "(".repeat(d))),
        ("closers", |d| format!("print(1{})", ")".repeat(d))),
        ("lists", |d| format!("print({}{})", "[".repeat(d), "]".repeat(d))),
        ("dicts", |d| format!("print({}1{})", "{1: ".repeat(d), "}".repeat(d))),
        ("calls", |d| format!("fn f() {{ return f }}\nf{}\nprint(1)", "()".repeat(d))),
        ("indexes", |d| format!("let a = [0]\nprint(a{})", "[0]".repeat(d))),
        ("call-args", |d| format!("print({}1{})", "print(".repeat(d), ")".repeat(d))),
        ("mixed-postfix", |d| format!("fn f(x) {{ return [f] }}\nf{}", "(1)[0]".repeat(d))),
        ("assign-index", |d| format!("let a = [0]\na{} = 1", "[0]".repeat(d))),
        ("minus", |d| format!("print({}1)", "-".repeat(d))),
        ("minus-spaced", |d| format!("print({}1)", "- ".repeat(d))),
        ("not", |d| format!("print({}true)", "not ".repeat(d))),
        ("pow", |d| format!("print({}1)", "1 ** ".repeat(d))),
        ("plus", |d| format!("print({}1)", "1 + ".repeat(d))),
        ("and", |d| format!("let x = 1\nprint({}x)", "x and ".repeat(d))),
        ("compare", |d| format!("print({}1)", "1 < ".repeat(d))),
        ("concat", |d| format!("let s = \"\"{}\nprint(len(s))", " + \"a\"".repeat(d))),
        ("if-blocks", |d| format!("{}print(1)\n{}", "if true {\n".repeat(d), "}\n".repeat(d))),
        ("while-blocks", |d| format!("{}{}print(1)", "while false { ".repeat(d), "} ".repeat(d))),
        ("for-blocks", |d| format!("{}print(1){}", "for i in range(1) { ".repeat(d), " }".repeat(d))),
        ("fn-decls", |d| format!("{}{}print(1)", "fn f() { ".repeat(d), "} ".repeat(d))),
        ("fn-exprs", |d| format!("let g = {}1{}\nprint(g)", "fn() { return ".repeat(d), " }".repeat(d))),
        ("closures", |d| {
            format!("let g = {}1{}\nprint(g{})", "fn() { return ".repeat(d), " }".repeat(d), "()".repeat(d))
        }),
        ("else-if", |d| {
            let mut s = String::from("let x = 5\nif x == 0 { print(0) }");
            for i in 1..=d {
                s.push_str(&format!(" else if x == {i} {{ print({i}) }}"));
            }
            s + " else { print(-1) }\n"
        }),
        ("else-if-fn", |d| {
            let mut s = String::from("fn f(x) {\n if x == 0 { return 0 }");
            for i in 1..=d {
                s.push_str(&format!(" else if x == {i} {{ return {i} }}"));
            }
            s + "\n return -1\n}\nfor k in range(3) { print(f(k)) }\n"
        }),
        ("else-blocks", |d| format!("{}print(1){}", "if false { } else { ".repeat(d), " }".repeat(d))),
        ("return-chain", |d| format!("fn f() {{ {}1 }}\nprint(f())", "return ".repeat(d))),
        ("statements-fn", |d| {
            let body = "x = x + 1\n".repeat(d);
            format!("fn f(n) {{\nlet x = n\n{body}return x\n}}\nfor i in range(3) {{ print(f(i)) }}\n")
        }),
        ("statements-top", |d| format!("let x = 0\n{}print(x)", "x += 1\n".repeat(d))),
        ("lets-fn", |d| {
            let body: String = (0..d.min(5000)).map(|i| format!("let v{i} = {i}\n")).collect();
            format!("fn f() {{\n{body}return 1\n}}\nprint(f())\n")
        }),
        ("globals", |d| (0..d).map(|i| format!("let g{i} = {i}\n")).collect::<String>() + "print(1)\n"),
        ("call-many-args", |d| format!("fn f(a) {{ return a }}\nprint(f({}))", vec!["1"; d].join(", "))),
        ("params", |d| {
            let params: Vec<String> = (0..d.min(3000)).map(|i| format!("p{i}")).collect();
            format!("fn f({}) {{ return 1 }}\nprint(f())", params.join(", "))
        }),
        ("list-literal", |d| format!("let l = [{}]\nprint(len(l))", vec!["1"; d].join(", "))),
        ("list-literal-distinct", |d| {
            format!("let l = [{}]\nprint(len(l))", (0..d).map(|i| i.to_string()).collect::<Vec<_>>().join(", "))
        }),
        ("dict-literal", |d| {
            let items: Vec<String> = (0..d).map(|i| format!("\"k{i}\": {i}.5")).collect();
            format!("let m = {{{}}}\nprint(len(m))", items.join(", "))
        }),
        ("captures", |d| {
            let lets: String = (0..d.min(3000)).map(|i| format!("let c{i} = {i}\n")).collect();
            let sum: Vec<String> = (0..d.min(3000)).map(|i| format!("c{i}")).collect();
            format!("fn outer() {{\n{lets}return fn() {{ return {} }}\n}}\nprint(outer()())", sum.join(" + "))
        }),
        ("long-ident", |d| format!("let {0} = 1\nprint({0})", "x".repeat(d * 10))),
        ("long-string", |d| format!("print(len(\"{}\"))", "ab\\n".repeat(d * 10))),
        ("long-int", |d| format!("print({})", "9".repeat(d))),
        ("long-float", |d| format!("print(1.{})", "5".repeat(d))),
        ("long-exp", |d| format!("print(1e{})", "9".repeat(d))),
        ("long-hex", |d| format!("print(0x{})", "f".repeat(d))),
        ("long-comment", |d| format!("# {}\nprint(1)", "c".repeat(d * 10))),
        ("blank-lines", |d| format!("{}print(1)", "\n".repeat(d * 10))),
        ("semicolons", |d| format!("{}print(1)", ";".repeat(d))),
        ("commas", |d| format!("print(1{})", ",".repeat(d))),
    ];

    /// A program nested or repeated `d` deep, in one of the shapes of [`NESTS`].
    fn nest_case(rng: &mut Rng) -> Case {
        let (name, make) = rng.pick(NESTS);
        let d = *rng.pick(DEPTHS);
        let mut source = make(d).into_bytes();
        if rng.chance(15) {
            let how = mutate(rng, &mut source, &Corpus { files: vec![(String::new(), b"x".to_vec())] });
            return Case::new(format!("nest {name} {d} + {how}"), source, false);
        }
        Case::new(format!("nest {name} {d}"), source, true)
    }

    // -----------------------------------------------------------------------------------------
    // Deep values and deep recursion at run time
    // -----------------------------------------------------------------------------------------

    /// Lengths of the chains built at run time; the longest take about a second to build.
    const CHAIN: &[usize] = &[999, 1000, 1001, 10_000, 100_000, 1_000_000];

    /// How to build a chain `v` of depth `n`, one link per iteration.
    const BUILDERS: &[(&str, &str)] = &[
        ("list", "let v = []\nfor i in range(N) { v = [v] }\n"),
        ("list-pair", "let v = []\nfor i in range(N) { v = [i, v, 1.5] }\n"),
        ("dict", "let v = {}\nfor i in range(N) { v = {\"k\": v} }\n"),
        ("dict-int-key", "let v = {}\nfor i in range(N) { v = {i: v, nil: 1} }\n"),
        ("closure", "let v = fn() { return 0 }\nfor i in range(N) { let h = v; v = fn() { return h } }\n"),
        ("mixed", "let v = []\nfor i in range(N) { let p = v; v = [{\"k\": fn() { return p }}] }\n"),
        ("push", "let v = []\nlet cur = v\nfor i in range(N) { let n = []; push(cur, n); cur = n }\n"),
        ("list-array", "let v = array(1, 0)\nfor i in range(N) { v = [v, array(1, 1.0)] }\n"),
    ];

    /// What to do with the chain once built.
    const USES: &[&str] = &[
        "v = nil\nprint(\"dropped\")\n",
        "print(\"kept until exit\")\n",
        "print(v)\n",
        "print(str(v) == \"\")\n",
        "print(v == v)\n",
        "let w = v\nprint(v == w)\n",
        "print(len(v), type(v))\n",
        "let c = [v, v]\nc = nil\nv = nil\nprint(1)\n",
        "push(v, v)\nprint(v)\n",
        "let t = spawn(fn(x) { return x }, v)\nv = nil\nlet r = join(t)\nr = nil\nprint(2)\n",
        "fn keep(x) { return [x] }\nfor k in range(3) { v = keep(v) }\nv = nil\nprint(3)\n",
        "let d = {\"a\": v}\nremove(d, \"a\")\nv = nil\nprint(4)\n",
        "let l = [v]\npop(l)\nv = nil\nprint(5)\n",
        "print(v + [])\n",
        "let w = v\nfor i in range(3) { w = [w] }\nprint(w == v)\n",
    ];

    /// A chain of values built at run time, then dropped, printed, compared or sent to a thread;
    /// or a deep recursion. Both end by construction.
    fn deep_value_case(rng: &mut Rng) -> Case {
        if rng.chance(30) {
            return recursion_case(rng);
        }
        let (name, build) = rng.pick(BUILDERS);
        let n = *rng.pick(CHAIN);
        let use_ = rng.pick(USES);
        let mut body = build.replace('N', &n.to_string()) + use_;
        let place = match rng.below(4) {
            0 => {
                body = format!("fn work() {{\n{body}return 0\n}}\nprint(work())\n");
                "in a function"
            }
            1 => {
                body = format!("fn work() {{\n{body}return 0\n}}\nprint(join(spawn(work)))\n");
                "in a thread"
            }
            _ => "at top level",
        };
        Case::new(format!("deep {name} {n} {place}: {}", use_.lines().next().unwrap_or("")), body.into_bytes(), true)
    }

    /// Recursion near and beyond the call-depth limit (10,000), through compiled and
    /// interpreted frames, builtins and threads.
    fn recursion_case(rng: &mut Rng) -> Case {
        let n = *rng.pick(&[9_998, 9_999, 10_000, 10_001, 100_000]);
        let shapes: &[(&str, &str)] = &[
            ("plain", "fn f(n) { if n == 0 { return 0 } return f(n - 1) + 1 }\nprint(f(N))\n"),
            ("float", "fn f(n) { if n < 0.5 { return 0.0 } return f(n - 1.0) + 1.0 }\nprint(f(N.0))\n"),
            (
                "mutual-mixed",
                "fn f(n) { if n == 0 { return 0 } return g(n - 1) + 1 }\n\
                 fn g(n) { let l = [n]; return f(l[0]) }\nprint(f(N))\n",
            ),
            ("list", "fn f(n) { if n == 0 { return [] } return [f(n - 1)] }\nlet r = f(N)\nprint(len(r))\nr = nil\n"),
            ("closure", "let f = nil\nf = fn(n) { if n == 0 { return 0 } return f(n - 1) + 1 }\nprint(f(N))\n"),
            ("thread", "fn f(n) { if n == 0 { return 0 } return f(n - 1) + 1 }\nprint(join(spawn(f, N)))\n"),
            (
                "array",
                "fn f(a, n) { if n == 0 { return a[0] } a[0] += 1; return f(a, n - 1) }\n\
                 print(f(array(1, 0), N))\n",
            ),
            ("print-args", "fn f(n) { if n == 0 { return 0 } print(n) return f(n - 1) }\nf(N)\n"),
            ("error-deep", "fn f(n) { if n == 0 { return 1 // 0 } return f(n - 1) }\nf(N)\n"),
            (
                "spawn-chain",
                "fn f(n) { if n == 0 { return 0 } return join(spawn(f, n - 1)) + 1 }\nprint(f(N // 1000))\n",
            ),
        ];
        let (name, text) = rng.pick(shapes);
        Case::new(format!("deep recursion-{name} {n}"), text.replace('N', &n.to_string()).into_bytes(), true)
    }

    // -----------------------------------------------------------------------------------------
    // Threads
    // -----------------------------------------------------------------------------------------

    /// Work a thread may do: each a function `wN(k, a, l, d)` of its number, a shared float
    /// array, a shared list and a shared dict; all end by construction.
    const WORKS: &[&str] = &[
        "let s = 0\nfor i in range(20000) { s += i % 7 }\nreturn s",
        "let s = 0.0\nfor i in range(20000) { s += sqrt(i) }\nreturn s",
        "for i in range(len(a)) { a[i] = a[i] + k }\nreturn a[0]",
        "for i in range(200) { push(l, k) }\nreturn len(l)",
        "for i in range(200) { d[i % 13] = k }\nreturn len(d)",
        "for i in range(100) { if len(l) > 0 { pop(l) } }\nreturn k",
        "print(\"thread\", k)\nreturn k",
        "return 1 // (k - k)",
        "return k + nil",
        "let t = spawn(fn(x) { return x * 2 }, k)\nreturn join(t)",
        "let r = [k]\nfor i in range(1000) { r = [r] }\nreturn 0",
        "fn down(n) { if n == 0 { return 0 } return down(n - 1) + 1 }\nreturn down(500 + k)",
        "fn down(n) { return down(n + 1) }\nreturn down(0)",
        "let x = k\nfor i in range(5000) { x = x * 1.0001 }\nreturn x",
        "return a",
        "return fn() { return k }",
        "let s = 0\nfor i in range(3000) { s += len(str(i)) }\nreturn s",
    ];

    /// Several threads sharing an array, a list and a dict, each doing one kind of work, joined
    /// in some order (some maybe never, or twice); ends by construction.
    fn thread_case(rng: &mut Rng) -> Case {
        let count = 1 + rng.size(7);
        let mut out = String::from("let a = array(64, 1.0)\nlet l = []\nlet d = {}\n");
        let mut used = Vec::new();
        for k in 0..count {
            let w = rng.below(WORKS.len());
            used.push(w.to_string());
            out.push_str(&format!("fn w{k}(k, a, l, d) {{\n{}\n}}\n", WORKS[w]));
            out.push_str(&format!("let t{k} = spawn(w{k}, {k}, a, l, d)\n"));
        }
        for k in 0..count {
            match rng.below(6) {
                0 => {}
                1 => out.push_str(&format!("print(join(t{k}), join(t{k}))\n")),
                _ => out.push_str(&format!("print(join(t{k}))\n")),
            }
        }
        out.push_str("print(len(l), len(d), a[0])\n");
        Case::new(format!("threads {count} [{}]", used.join(" ")), out.into_bytes(), true)
    }

    // -----------------------------------------------------------------------------------------
    // Edge values through operators and builtins
    // -----------------------------------------------------------------------------------------

    /// Values at the edges: int limits, odd floats, odd strings, empty and nested containers.
    const VALUES: &[&str] = &[
        "0",
        "1",
        "-1",
        "2",
        "3",
        "63",
        "64",
        "-64",
        "1000000",
        "2147483648",
        "-2147483649",
        "4294967296",
        "9223372036854775807",
        "(-9223372036854775807 - 1)",
        "0.0",
        "-0.0",
        "0.5",
        "-1.5",
        "1e16",
        "9.3e18",
        "-9.3e18",
        "1e19",
        "1e308",
        "5e-324",
        "(1e308 * 10)",
        "(-1e308 * 10)",
        "(1e308 * 10 - 1e308 * 10)",
        "\"\"",
        "\"a\"",
        "\"abc\"",
        "\"é😀\"",
        "\"12\"",
        "\" 12 \"",
        "\"-12\"",
        "\"1.5\"",
        "\"1e400\"",
        "\"nan\"",
        "\"inf\"",
        "\"9223372036854775808\"",
        "\"-9223372036854775808\"",
        "\"0x10\"",
        "\"a\\\"b\\nc\"",
        "nil",
        "true",
        "false",
        "[]",
        "[1, 2.5, \"x\"]",
        "[[]]",
        "{}",
        "{\"a\": 1, 2: nil}",
        "{nil: 1, true: 2}",
        "array(0, 0)",
        "array(3, 0.0)",
        "array(2, 7)",
        "print",
        "len",
        "fn(x) { return x }",
        "fn() { return 1 }",
        "range(3)",
        "range(-9223372036854775807 - 1, 9223372036854775807)",
        "range(0, 9223372036854775807, 4611686018427387904)",
        "range(9223372036854775807, -9223372036854775807 - 1, -1)",
    ];

    const BINARY: &[&str] = &["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or"];

    const BUILTINS: &[&str] = &[
        "print",
        "len",
        "str",
        "int",
        "float",
        "type",
        "range",
        "push",
        "pop",
        "keys",
        "has",
        "remove",
        "array",
        "sqrt",
        "sin",
        "cos",
        "tan",
        "exp",
        "log",
        "floor",
        "ceil",
        "abs",
        "min",
        "max",
        "clock",
        "join",
        "args",
        "cpu_count",
        "assert",
    ];

    /// A short program applying operators and builtins to edge values, at top level, inside a
    /// function the JIT may compile, in loops over odd ranges, and in stores and compound
    /// assignments.
    fn edge_case(rng: &mut Rng) -> Case {
        let mut out = String::new();
        for _ in 0..1 + rng.size(4) {
            out.push_str(&edge_statement(rng));
        }
        Case::new("edge values".to_string(), out.into_bytes(), true)
    }

    fn edge_statement(rng: &mut Rng) -> String {
        let a = *rng.pick(VALUES);
        let b = *rng.pick(VALUES);
        let c = *rng.pick(VALUES);
        let op = *rng.pick(BINARY);
        let f = *rng.pick(BUILTINS);
        match rng.below(10) {
            0 => format!("print({a} {op} {b})\n"),
            1 => format!("print({f}({}))\n", [a, b, c][..rng.below(4)].join(", ")),
            2 => format!(
                "fn h(p, q) {{ return p {op} q }}\nfor k in range(3) {{ print(h(1, 2)) }}\nprint(h({a}, {b}))\n"
            ),
            3 => format!("fn h(p) {{ return {f}(p) }}\nprint(h(1.5))\nprint(h({a}))\n"),
            4 => format!("let v = {a}\nv {op}= {b}\nprint(v)\n"),
            5 => format!("let v = {a}\nprint(v[{b}])\nv[{b}] = {c}\nprint(v)\n"),
            6 => format!("let n = 0\nfor i in {a} {{ n += 1\nif n > 3 {{ break }} print(i) }}\n"),
            7 => format!("print(-{a}, not {a}, {a}[0])\n"),
            8 => format!("let l = [{a}]\nlet s = 0\nfor k in range(3) {{ push(l, {b}) }}\nprint(l, {f}(l))\n"),
            _ => format!(
                "fn h(p) {{ let s = p\nfor k in range(4) {{ s = s {op} p }}\nreturn s }}\nprint(h(2))\nprint(h({a}))\n"
            ),
        }
    }
}
