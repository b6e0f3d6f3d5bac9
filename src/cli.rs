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
use std::process::ExitCode;
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
#[derive(clap::Args)]
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
}

impl JitArgs {
    /// The JIT's options, with `--jit`.
    fn options(&self) -> Option<crate::jit::JitOptions> {
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
    #[arg(long, value_name = "MS", default_value_t = 5.0)]
    switch_interval: f64,
    /// Print per-thread statistics to stderr at exit.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    jit: JitArgs,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The program file, or `-` for standard input.
    file: PathBuf,
    /// Arguments for the program, available as `args()` (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
    /// Milliseconds a thread may hold the GIL while another waits.
    #[arg(long, value_name = "MS", default_value_t = 5.0)]
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

/// Parses the command line and runs the chosen command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
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
fn bench(args: BenchArgs) -> ExitCode {
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
    ExitCode::from(crate::bench::run(options))
}

/// Opens the interactive prompt (`src/repl.rs`) on the interpreter's main thread.
fn prompt(args: PromptArgs) -> ExitCode {
    let Some(interval) = switch_interval(args.switch_interval) else {
        to_stderr("error: --switch-interval must be a positive number of milliseconds, at most 86400000 (one day)\n");
        return ExitCode::from(2);
    };
    gil::set_switch_interval(interval);
    vm::COUNT_BYTECODES.store(args.stats, std::sync::atomic::Ordering::Relaxed);
    let options = crate::repl::Options { jit: args.jit.options(), stats: args.stats };
    interrupt::keep_running_on_ctrl_c();
    on_main_thread(move || crate::repl::run(options))
}

/// Reads the program; an unreadable file is a usage error (2), text that is not UTF-8 a
/// program error (1) located at the first bad byte.
fn read_source(path: &PathBuf) -> Result<Arc<SourceFile>, ExitCode> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).map(|_| b)
    } else {
        std::fs::read(path)
    };
    let name = if path.as_os_str() == "-" { "<stdin>".to_string() } else { path.display().to_string() };
    let bytes = bytes.map_err(|e| {
        to_stderr(&format!("error: cannot read {name}: {e}\n"));
        ExitCode::from(2)
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(name, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let src = SourceFile::new(name, String::from_utf8_lossy(e.as_bytes()).into_owned());
            let map = SourceMap::new(src);
            report(&Diagnostic::new("source is not valid UTF-8", crate::source::Span::new(at, at + 1)), &map);
            Err(ExitCode::from(1))
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

fn check(path: &PathBuf, jit_report: bool) -> ExitCode {
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
            ExitCode::SUCCESS
        }
        Err(d) => {
            report(&d, &src);
            ExitCode::from(1)
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

fn run(args: RunArgs) -> ExitCode {
    let Some(interval) = switch_interval(args.switch_interval) else {
        to_stderr("error: --switch-interval must be a positive number of milliseconds, at most 86400000 (one day)\n");
        return ExitCode::from(2);
    };
    gil::set_switch_interval(interval);
    if let Some(n) = args.threads
        && crate::parallel::set_threads(n).is_err()
    {
        to_stderr(&format!("error: --threads must be an int from 1 to {}\n", crate::parallel::MAX_THREADS));
        return ExitCode::from(2);
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
fn on_main_thread(body: impl FnOnce() -> u8 + Send + 'static) -> ExitCode {
    let watch = interrupt::install();
    let unwound = watch.as_ref().and_then(|w| w.unwind_signal());
    let unwound_signalled = unwound.is_some();
    let main = std::thread::Builder::new().name("main".into()).stack_size(thread::THREAD_STACK).spawn(move || {
        let _unwound = unwound;
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
    ExitCode::from(1)
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
/// statistics; returns the exit code.
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
