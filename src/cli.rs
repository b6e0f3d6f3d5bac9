//! The command line: `mini run`, `mini check`, `mini repl` (and `mini` alone, the prompt), `mini bench`,
//! their options, and exit codes (0 success, 1 program error, 2 usage error).

use crate::compiler::{self, Program};
use crate::gil::{self, GilBound, GilSend, with_gil};
use crate::interrupt;
use crate::source::{Diagnostic, SourceFile, SourceMap};
use crate::sync::wait::Stop;
use crate::vm::{self, Shared, Vm, thread};
use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "mini", version, about = "The mini language: a GIL interpreter and a nogil JIT")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a command: the prompt's options (`mini --jit` is `mini repl --jit`).
    #[command(flatten)]
    prompt: PromptArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run a program (`-` reads it from standard input).
    Run(RunArgs),
    /// Report syntax and compile errors without running.
    Check {
        /// The program file, or `-` for standard input.
        file: PathBuf,
        /// Say for which argument types each top-level function could be compiled by --jit.
        #[arg(long)]
        jit_report: bool,
    },
    /// Open the interactive prompt (also `mini` without a command); reads stdin when it is not a terminal.
    Repl(PromptArgs),
    /// Time a program's `work(lo, hi)` in every strategy (threads, prange, processes, MPI) for 1 to N workers.
    Bench(BenchArgs),
}

/// The options of `mini bench` (lang-spec/cli.md, "`mini bench`").
#[derive(clap::Args)]
struct BenchArgs {
    /// The program: it defines `fn work(lo, hi)` and may define `fn size()`.
    file: PathBuf,
    /// Arguments for the program, available as `args()` (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
    /// The largest number of workers, from 1 to 256 (default: cpu_count()); each strategy runs with 1, 2, ..., N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256))]
    workers: Option<u64>,
    /// Measured runs per strategy and worker count, after one warm-up run.
    #[arg(long, value_name = "R", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    runs: u64,
    /// The size of the index range [0, n) (default: the program's size()).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=crate::bench::MAX_N))]
    n: Option<u64>,
    /// The strategies to run, a comma-separated list (default: all that this machine can run).
    #[arg(long, value_name = "IDS", value_enum, value_delimiter = ',')]
    strategies: Vec<crate::bench::Strategy>,
    /// The report's format on stdout.
    #[arg(long, value_enum, default_value_t = crate::bench::Format::Table)]
    format: crate::bench::Format,
    /// Also draw speedup against workers to this file (.svg or .png).
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,
}

/// The JIT's options, shared by `run` and the prompt.
#[derive(clap::Args, Debug, PartialEq)]
struct JitArgs {
    /// Compile hot, type-stable functions to native code that runs without the GIL.
    #[arg(long)]
    jit: bool,
    /// With --jit: calls after which a function is compiled (0 compiles at the first call).
    #[arg(long, value_name = "N", default_value_t = crate::jit::DEFAULT_THRESHOLD, requires = "jit")]
    jit_threshold: u64,
    /// With --jit: keep holding the GIL while native code runs (numba's default, nogil=False).
    #[arg(long, requires = "jit")]
    keep_gil: bool,
    /// With --jit: print the Cranelift IR of each compiled function to stderr.
    #[arg(long, requires = "jit")]
    dump_ir: bool,
    /// With --jit: neither read nor write the cache of compiled code ($MINI_CACHE_DIR, else
    /// $XDG_CACHE_HOME/mini, else ~/.cache/mini; an empty MINI_CACHE_DIR also turns it off).
    #[arg(long, requires = "jit")]
    no_cache: bool,
}

impl JitArgs {
    /// The JIT's options, with `--jit`; `--no-cache` turns the cache off for the process.
    fn options(&self) -> Option<crate::jit::JitOptions> {
        if self.no_cache {
            crate::jit::cache::disable();
        }
        self.jit.then_some(crate::jit::JitOptions {
            threshold: self.jit_threshold,
            keep_gil: self.keep_gil,
            dump_ir: self.dump_ir,
        })
    }
}

#[derive(clap::Args)]
struct PromptArgs {
    /// Milliseconds a thread may hold the GIL while another waits.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_SWITCH_INTERVAL_MS)]
    switch_interval: f64,
    /// Print per-thread statistics to stderr at exit.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    jit: JitArgs,
}

#[derive(clap::Args, Debug, PartialEq)]
struct RunArgs {
    /// The program file, or `-` for standard input.
    file: PathBuf,
    /// Arguments for the program, available as `args()` (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
    /// Milliseconds a thread may hold the GIL while another waits.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_SWITCH_INTERVAL_MS)]
    switch_interval: f64,
    /// Print per-thread statistics to stderr at exit.
    #[arg(long)]
    stats: bool,
    /// Print the bytecode of every function before running.
    #[arg(long)]
    dump_bytecode: bool,
    /// The number of threads parallel loops (prange) use, from 1 to 256 (default: cpu_count()).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    threads: Option<i64>,
    #[command(flatten)]
    jit: JitArgs,
}

/// The process's start, called by the executable's C `main` (src/main.rs, `#![no_main]`) in
/// place of Rust's runtime start-up (`lang_start`), which parsed /proc/self/maps for the first
/// thread's stack guard (~100K instructions, a tenth of the start; ARCHITECTURE.md, "Speed") and
/// gave every thread an alternate signal stack. It does what
/// of `lang_start` mini relies on: standard descriptors that are closed are opened on
/// /dev/null (so the program's output never goes to a file it opens), SIGPIPE is ignored (a
/// closed stdout is an `Err` of `write`, which mini handles), a panic on this thread ends the
/// process with exit code 101, and stdout is flushed at the end. The stack-overflow report of
/// the program's thread is [`guard_stack`]'s.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn start() -> i32 {
    sanitize_standard_fds();
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code of ours.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let code = std::panic::catch_unwind(main).unwrap_or(101);
    let _ = std::io::stdout().flush();
    code.into()
}

/// Opens /dev/null on each of the descriptors 0, 1 and 2 that is closed, as Rust's runtime
/// does; aborts if that fails (as it does), since a file the program opens would then take
/// that number.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn sanitize_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    loop {
        // SAFETY: `fds` is an array of three initialized `pollfd`s.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
        if r >= 0 {
            break;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            // poll cannot be used (as Rust's runtime does then): ask each descriptor instead
            _ => {
                for p in &mut fds {
                    // SAFETY: F_GETFD only reads the descriptor's flags.
                    let closed = unsafe { libc::fcntl(p.fd, libc::F_GETFD) } == -1;
                    p.revents = if closed { libc::POLLNVAL } else { 0 };
                }
                break;
            }
        }
    }
    for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // SAFETY: a NUL-terminated path and integer flags; the lowest free descriptor is the
        // closed one, which is checked.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR, 0) };
        if fd != p.fd {
            std::process::abort();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
thread_local! {
    /// The addresses around this thread's stack guard whose access is a stack overflow (set
    /// by [`guard_stack`]; empty elsewhere).
    static GUARD: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// The size of the alternate signal stack on which [`on_fault`] runs.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SIGNAL_STACK: usize = 64 * 1024;

/// Makes a stack overflow of the current thread (the program's thread `main`) end the process
/// with Rust's report, `thread 'main' has overflowed its stack` and SIGABRT, as Rust's runtime
/// did for every thread before mini started itself (`start`). Without it the overflow is
/// still no undefined behaviour: Rust's stack probes touch every page of a frame in order, so
/// the overflow faults on the guard page below the stack and the kernel ends the process with
/// SIGSEGV; that is what happens on other threads (mini bounds its own recursion, so either is
/// an internal error). Costs three system calls.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn guard_stack() {
    // SAFETY: `attr` is initialized by `pthread_getattr_np` before it is read, and destroyed
    // once; for a thread other than the process's first, glibc reads no file for it.
    let guard = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return;
        }
        let (mut stack, mut size, mut guard) = (std::ptr::null_mut(), 0, 0);
        let ok = libc::pthread_attr_getstack(&attr, &mut stack, &mut size) == 0
            && libc::pthread_attr_getguardsize(&attr, &mut guard) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if !ok || guard == 0 {
            return;
        }
        // glibc before 2.27 counted the guard inside the stack, later ones below it: both
        // (as Rust's runtime does)
        (stack as usize - guard, stack as usize + guard)
    };
    // SAFETY: a fresh anonymous mapping, used only as this thread's signal stack, which it
    // stays for the life of the process (this thread ends by ending the process).
    let installed = unsafe {
        let mem = libc::mmap(
            std::ptr::null_mut(),
            SIGNAL_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return;
        }
        let stack = libc::stack_t { ss_sp: mem, ss_flags: 0, ss_size: SIGNAL_STACK };
        libc::sigaltstack(&stack, std::ptr::null_mut()) == 0
    };
    if !installed {
        return;
    }
    GUARD.set(guard);
    // SAFETY: `on_fault` is an `extern "C"` handler that does only async-signal-safe work
    // (a thread-local read of plain integers, write(2), abort(3), signal(2)); a zeroed
    // `sigaction` is a valid empty one.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction =
            on_fault as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        for signal in [libc::SIGSEGV, libc::SIGBUS] {
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The SIGSEGV and SIGBUS handler of [`guard_stack`]: a fault in the current thread's guard
/// is reported as a stack overflow and aborts; any other fault gets the default action when
/// the faulting instruction runs again (the process ends with that signal, as before).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn on_fault(signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler; for SIGSEGV and
    // SIGBUS it carries the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (low, high) = GUARD.get();
    if (low..high).contains(&addr) {
        let message = b"\nthread 'main' has overflowed its stack\nfatal runtime error: stack overflow, aborting\n";
        // SAFETY: write(2) and abort(3) are async-signal-safe; `message` is a static buffer.
        unsafe {
            libc::write(2, message.as_ptr().cast(), message.len());
            libc::abort();
        }
    }
    // SAFETY: signal(2) is async-signal-safe and SIG_DFL runs no code of ours.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// The default of `--switch-interval`, in milliseconds.
const DEFAULT_SWITCH_INTERVAL_MS: f64 = 5.0;

/// The options of the commonest command lines, `mini run [--jit] [--stats] FILE [-- ARGS]`
/// (`args` without the program's name), as clap would parse them, or `None` for any other
/// command line, which clap parses. Building clap's parser was a sixth of the instructions of
/// `mini run` of an empty program (ARCHITECTURE.md, "Speed"); the test `quick_run_args_are_clap_s`
/// compares the two.
fn quick_run_args(args: &[std::ffi::OsString]) -> Option<RunArgs> {
    let (command, rest) = args.split_first()?;
    if command != "run" {
        return None;
    }
    let (mut file, mut jit, mut stats, mut no_cache) = (None, false, false, false);
    let mut rest = rest.iter();
    let mut program_args = Vec::new();
    while let Some(arg) = rest.next() {
        match arg.to_str() {
            // a repeated flag is clap's error
            Some("--jit") if !jit => jit = true,
            Some("--stats") if !stats => stats = true,
            Some("--no-cache") if !no_cache => no_cache = true,
            Some("--") if file.is_some() => {
                program_args = rest.map(|a| a.clone().into_string().ok()).collect::<Option<_>>()?;
                break;
            }
            // the file: not empty, not an option (`-` alone is stdin), and only one
            _ if file.is_none() && !arg.is_empty() && (arg == "-" || !arg.as_encoded_bytes().starts_with(b"-")) => {
                file = Some(PathBuf::from(arg));
            }
            _ => return None,
        }
    }
    // `--no-cache` without `--jit` is clap's error
    if no_cache && !jit {
        return None;
    }
    Some(RunArgs {
        file: file?,
        args: program_args,
        switch_interval: DEFAULT_SWITCH_INTERVAL_MS,
        stats,
        dump_bytecode: false,
        threads: None,
        jit: JitArgs { jit, jit_threshold: crate::jit::DEFAULT_THRESHOLD, keep_gil: false, dump_ir: false, no_cache },
    })
}

/// Parses the command line and runs the chosen command.
pub fn main() -> u8 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(run_args) = quick_run_args(&args) {
        return run(run_args);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Check { file, jit_report }) => check(&file, jit_report),
        Some(Command::Repl(args)) => prompt(args),
        Some(Command::Bench(args)) => bench(args),
        None => prompt(cli.prompt),
    }
}

/// Runs `mini bench` (`src/bench/`).
fn bench(args: BenchArgs) -> u8 {
    let options = crate::bench::Options {
        file: args.file,
        workers: args.workers.map_or_else(crate::bench::default_workers, |w| w as usize),
        runs: args.runs as usize,
        n: args.n,
        strategies: args.strategies,
        format: args.format,
        plot: args.plot,
        args: args.args,
    };
    crate::bench::run(options)
}

/// Opens the interactive prompt (`src/repl.rs`) on the interpreter's main thread.
fn prompt(args: PromptArgs) -> u8 {
    let Some(interval) = switch_interval(args.switch_interval) else {
        to_stderr("error: --switch-interval must be a positive number of milliseconds, at most 86400000 (one day)\n");
        return 2;
    };
    gil::set_switch_interval(interval);
    vm::COUNT_BYTECODES.store(args.stats, std::sync::atomic::Ordering::Relaxed);
    let options = crate::repl::Options { jit: args.jit.options(), stats: args.stats };
    interrupt::keep_running_on_ctrl_c();
    on_main_thread(move || crate::repl::run(options))
}

/// Reads the program; an unreadable file is a usage error (2), text that is not UTF-8 a
/// program error (1) located at the first bad byte.
fn read_source(path: &PathBuf) -> Result<Arc<SourceFile>, u8> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).map(|_| b)
    } else {
        std::fs::read(path)
    };
    let name = if path.as_os_str() == "-" { "<stdin>".to_string() } else { path.display().to_string() };
    let bytes = bytes.map_err(|e| {
        to_stderr(&format!("error: cannot read {name}: {e}\n"));
        2
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(name, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let src = SourceFile::new(name, String::from_utf8_lossy(e.as_bytes()).into_owned());
            let map = SourceMap::new(src);
            report(&Diagnostic::new("source is not valid UTF-8", crate::source::Span::new(at, at + 1)), &map);
            Err(1)
        }
    }
}

/// Writes to stderr. A failing stderr cannot be reported anywhere, so its errors are ignored
/// (`eprint!` would panic, `mini check prog.mini 2>&1 | head -1` with many warnings).
fn to_stderr(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn report(d: &Diagnostic, src: &SourceMap) {
    vm::flush_stdout();
    // one rank of several names itself (`rank R: `); alone, the report is unchanged
    to_stderr(&format!("{}{}", vm::mpi::report_prefix(), d.render(src)));
}

/// Parses the program whose main file is `main` (read from `path`) and the modules it imports,
/// adding them to `map`, and compiles them.
fn compile_source(map: &mut SourceMap, path: &std::path::Path) -> Result<Program, Diagnostic> {
    let path = (path.as_os_str() != "-").then_some(path);
    let files = crate::modules::load(map, path)?;
    let sources: Vec<_> = files.iter().enumerate().map(|(i, f)| f.source(i == 0)).collect();
    compiler::compile_modules(&sources)
}

fn check(path: &PathBuf, jit_report: bool) -> u8 {
    let mut src = match read_source(path) {
        Ok(src) => SourceMap::new(src),
        Err(code) => return code,
    };
    match compile_source(&mut src, path) {
        Ok(program) => {
            for w in &program.warnings {
                to_stderr(&w.render_as("warning", &src));
            }
            if jit_report {
                let _ = vm::stdout().write_all(crate::jit::jit_report(&program, &src).as_bytes());
                vm::flush_stdout();
            }
            0
        }
        Err(d) => {
            report(&d, &src);
            1
        }
    }
}

/// The longest switch interval, in milliseconds: one day (lang-spec/cli.md).
pub const MAX_SWITCH_INTERVAL_MS: f64 = 86_400_000.0;

/// The switch interval of `--switch-interval MS`, or `None` unless `MS` is a positive number of
/// milliseconds no larger than [`MAX_SWITCH_INTERVAL_MS`] (NaN and infinities are refused).
fn switch_interval(ms: f64) -> Option<Duration> {
    (ms > 0.0 && ms <= MAX_SWITCH_INTERVAL_MS).then(|| Duration::from_secs_f64(ms / 1000.0))
}

fn run(args: RunArgs) -> u8 {
    let Some(interval) = switch_interval(args.switch_interval) else {
        to_stderr("error: --switch-interval must be a positive number of milliseconds, at most 86400000 (one day)\n");
        return 2;
    };
    gil::set_switch_interval(interval);
    if let Some(n) = args.threads
        && crate::parallel::set_threads(n).is_err()
    {
        to_stderr(&format!("error: --threads must be an int from 1 to {}\n", crate::parallel::MAX_THREADS));
        return 2;
    }
    // (Ctrl-C while reading the program, from a terminal say, still ends mini the default way.)
    let src = match read_source(&args.file) {
        Ok(src) => src,
        Err(code) => return code,
    };
    vm::mpi::prepare_environment();
    on_main_thread(move || {
        // MPI (when launched by mpirun) starts and ends on this thread, around the program
        vm::mpi::start();
        let code = compile_and_run(SourceMap::new(src), args);
        vm::mpi::finish(code);
        code
    })
}

/// Runs `body` on the interpreter's main thread (named `main`, with a mini thread's stack),
/// and exits the process with its exit code; this thread answers Ctrl-C meanwhile.
fn on_main_thread(body: impl FnOnce() -> u8 + Send + 'static) -> u8 {
    let watch = interrupt::install();
    let unwound = watch.as_ref().and_then(|w| w.unwind_signal());
    let unwound_signalled = unwound.is_some();
    let main = std::thread::Builder::new().name("main".into()).stack_size(thread::THREAD_STACK).spawn(move || {
        let _unwound = unwound;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        guard_stack();
        let code = body();
        // The process ends here, so the waiting thread need not wake up (that cost about
        // 0.2 ms per run); it only wakes if this thread unwinds instead.
        std::process::exit(code.into())
    });
    // this thread answers Ctrl-C while the program runs on `main`, and reports its panic
    let _ = main.map(|h| match watch {
        Some(watch) if unwound_signalled => watch.wait(h),
        _ => h.join(),
    });
    to_stderr("error: internal error: the main thread failed\n");
    1
}

/// Compiles and runs a program on the current thread (the interpreter's main thread).
fn compile_and_run(mut src: SourceMap, args: RunArgs) -> u8 {
    let program = match compile_source(&mut src, &args.file) {
        Ok(p) => p,
        Err(d) => {
            interrupt::claim_end();
            report(&d, &src);
            return 1;
        }
    };
    if args.dump_bytecode {
        let mut text = String::new();
        for (i, module) in program.modules.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            crate::bytecode::disassemble(&module.main, &mut text);
        }
        to_stderr(&text);
    }
    vm::COUNT_BYTECODES.store(args.stats, std::sync::atomic::Ordering::Relaxed);
    let jit = args.jit.options();
    run_program(program, Arc::new(src), args.args, args.stats, jit)
}

// SAFETY: a compiled program holds constants (values) and prototypes, touched only under the
// GIL once the program runs; it holds no token.
unsafe impl GilSend for Program {}

/// Runs a compiled program on the current thread, waits for its threads, reports errors and
/// statistics; returns the exit code. The process must end after it: the program's objects are
/// never freed.
fn run_program(
    program: Program,
    src: Arc<SourceMap>,
    args: Vec<String>,
    stats: bool,
    jit: Option<crate::jit::JitOptions>,
) -> u8 {
    let mut jit_report = String::new();
    let mut prange_report = String::new();
    // SAFETY: the program was compiled on this thread, which has started no other; no other
    // thread can reach its constants.
    let program = unsafe { GilBound::new_unshared(program) };
    let report_to = &mut jit_report;
    let prange_to = &mut prange_report;
    let code = with_gil(move |gil| {
        let program = program.into_inner(gil);
        let roots: Vec<Rc<crate::bytecode::Proto>> = program.modules.iter().map(|m| m.main.clone()).collect();
        let shared = Rc::new(Shared::new(program, src.clone(), args, jit));
        let mut vm = Vm::new(gil, shared.clone());
        let code = match vm.run_main() {
            // A main-thread error ends the program at once, without waiting for other threads.
            Err(d) => {
                interrupt::claim_end();
                report(&d, &src);
                1
            }
            Ok(_) => {
                let waited = thread::wait_all(gil);
                interrupt::claim_end();
                report_threads(waited, &src)
            }
        };
        // flushed with the GIL held: no other thread can be writing (lang-spec/errors.md)
        vm::flush_stdout();
        vm.finish_thread();
        *report_to = shared.jit.as_ref().map(|j| j.report(&src)).unwrap_or_default();
        *prange_to = if stats { vm::prange::report(&roots, &src) } else { String::new() };
        // The process ends once this returns (`on_main_thread`), and nothing of the program
        // needs dropping (no buffers to flush, no files open): its objects are left to the
        // exit instead of being freed one by one (a fifth of `mini run` of an empty program).
        std::mem::forget(vm);
        std::mem::forget(shared);
        code
    });
    if stats {
        print_stats();
        to_stderr(&prange_report);
        to_stderr(&jit_report);
    }
    code
}

/// Reports how the wait for the program's threads ended: the errors of threads never joined
/// (exit code 0), Ctrl-C (1), or a deadlock (1), reported at the first blocked thread's place.
pub(crate) fn report_threads(waited: Result<Vec<Diagnostic>, Stop>, src: &SourceMap) -> u8 {
    match waited {
        Ok(failures) => {
            for d in failures {
                vm::flush_stdout();
                to_stderr(&format!("error in a thread that was never joined:\n{}", d.render(src)));
            }
            0
        }
        Err(Stop::Interrupted) => {
            vm::flush_stdout();
            to_stderr("error: interrupted\n");
            1
        }
        Err(Stop::Deadlock(d)) => {
            vm::flush_stdout();
            let span = d.first_other.map(|w| w.span).unwrap_or_default();
            to_stderr(&Diagnostic::new(d.message, span).render(src));
            1
        }
    }
}

/// Prints the `--stats` thread table, then one line per place that made locks or queues.
pub(crate) fn print_stats() {
    let waits = ["join-ms", "lock-ms", "queue-ms", "barrier-ms", "sleep-ms"];
    let mut header =
        format!("{:<10} {:>14} {:>10} {:>10} {:>12}", "thread", "bytecodes", "gil-acq", "handoffs", "gil-wait-ms");
    for w in waits {
        header.push_str(&format!(" {w:>10}"));
    }
    to_stderr(&format!("{header}\n"));
    for r in vm::thread_reports() {
        let mut row = format!(
            "{:<10} {:>14} {:>10} {:>10} {:>12.3}",
            r.name,
            r.executed,
            r.gil.acquisitions,
            r.gil.handoffs,
            r.gil.wait.as_secs_f64() * 1000.0
        );
        for d in r.waits {
            row.push_str(&format!(" {:>10.3}", d.as_secs_f64() * 1000.0));
        }
        to_stderr(&format!("{row}\n"));
    }
    for line in crate::sync::stats::site_lines() {
        to_stderr(&format!("{line}\n"));
    }
    to_stderr(&vm::procpool::report());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    /// What clap makes of `mini <args>`: the options of `run`, or `None` (another command, or
    /// an error).
    fn clap_run_args(args: &[OsString]) -> Option<RunArgs> {
        let argv = std::iter::once(OsString::from("mini")).chain(args.iter().cloned());
        match Cli::try_parse_from(argv).ok()?.command {
            Some(Command::Run(args)) => Some(args),
            _ => None,
        }
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn quick_run_args_are_clap_s() {
        let quick: &[&[&str]] = &[
            &["run", "prog.mini"],
            &["run", "-"],
            &["run", "--jit", "prog.mini"],
            &["run", "prog.mini", "--jit"],
            &["run", "--stats", "--jit", "prog.mini"],
            &["run", "prog.mini", "--stats"],
            &["run", "prog.mini", "--", "1", "--jit", "-x", ""],
            &["run", "--jit", "prog.mini", "--"],
            &["run", "dir/with space.mini", "--", "--"],
            &["run", "run"],
            &["run", "--jit", "--no-cache", "prog.mini"],
            &["run", "--no-cache", "prog.mini", "--jit", "--stats"],
        ];
        for args in quick {
            let args = os(args);
            let fast = quick_run_args(&args);
            assert!(fast.is_some(), "{args:?} takes the quick path");
            assert_eq!(fast, clap_run_args(&args), "{args:?}");
        }
    }

    #[test]
    fn other_command_lines_are_left_to_clap() {
        let others: &[&[&str]] = &[
            &[],
            &["run"],
            &["run", ""],
            &["run", "--jit"],
            &["run", "--jit", "--jit", "prog.mini"],
            &["run", "--stats", "prog.mini", "--stats"],
            &["run", "a.mini", "b.mini"],
            &["run", "--", "prog.mini"],
            &["run", "--threads", "2", "prog.mini"],
            &["run", "--jit-threshold=0", "--jit", "prog.mini"],
            &["run", "--no-cache", "prog.mini"],
            &["run", "--jit", "--no-cache", "--no-cache", "prog.mini"],
            &["run", "-h"],
            &["run", "--help"],
            &["run", "prog.mini", "--bogus"],
            &["check", "prog.mini"],
            &["--version"],
            &["repl"],
            &["prog.mini"],
        ];
        for args in others {
            assert_eq!(quick_run_args(&os(args)), None, "{args:?} is clap's");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_name_that_is_not_utf8_takes_the_quick_path() {
        use std::os::unix::ffi::OsStringExt;
        let args = vec![OsString::from("run"), OsString::from_vec(b"caf\xe9.mini".to_vec())];
        assert!(quick_run_args(&args).is_some());
        assert_eq!(quick_run_args(&args), clap_run_args(&args));
    }
}
