//! The virtual machine: one `Vm` per thread runs register bytecode while holding the GIL.
//!
//! The dispatch loop (`Vm::run_loop`) is the one large function; each arm does its fast path (int and
//! float arithmetic, list and array indexing) inline and calls into `ops`, `index` and `builtins`
//! for the rest. Safe points (backward jumps and calls) check the GIL's drop request.

mod atomics;
mod blocking;
pub mod builtins;
mod char_classes;
mod fields;
mod forked;
mod format;
mod handlers;
mod index;
mod io;
mod lists;
mod modules;
mod morelib;
pub mod mpi;
mod ndarray;
pub mod ops;
pub mod pool;
pub mod prange;
pub mod procpool;
pub mod random;
mod slice;
mod strings;
mod sync_builtins;
pub mod thread;
pub mod wire;

use crate::ast::BinOp;
use crate::bytecode::{Capture, Instr, Proto};
use crate::compiler::Program;
use crate::gil::{self, Gil};
use crate::jit::{Entered, Jit, JitOptions};
use crate::source::{Diagnostic, SourceMap, Span, TraceFrame};
use crate::value::{Closure, StrObj, Value, values_equal};
use builtins::Builtin;
use indexmap::IndexMap;
use std::cell::{OnceCell, RefCell, UnsafeCell};
use std::io::{BufWriter, IsTerminal, Stdout, Write};
use std::rc::Rc;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

/// The deepest nesting of calls of mini functions on one thread (see lang-spec/limits.md).
pub const MAX_DEPTH: usize = 10_000;

/// Whether threads count the bytecodes they execute (`--stats`).
pub static COUNT_BYTECODES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Why a builtin or an operation failed: a message, or a thread's error raised by `join`.
#[derive(Debug)]
pub enum Fail {
    Msg(String),
    Thread(Box<Diagnostic>),
    /// An error in native code: its message and the native frames, outermost first.
    Native(String, Vec<TraceFrame>),
    /// An error of a call a builtin made for its caller (`pmap`'s calls of its function, on
    /// any thread): reported as if the caller had made the call, its frames on top of the
    /// caller's stack.
    Call(Box<Diagnostic>),
    /// A complete report, made by a nested call on the same VM (`locked`'s call of its function).
    Done(Box<Diagnostic>),
    /// Not a failure: `builtins::call` asks the VM to call this builtin itself, with the place
    /// of the call (`Vm::call_sync`: the synchronisation builtins and `join`). Returned by a
    /// builtin before it does anything, so the common builtins' path has no extra test.
    Blocking,
}

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::Msg(s)
    }
}

impl From<&str> for Fail {
    fn from(s: &str) -> Fail {
        Fail::Msg(s.to_string())
    }
}

/// The global variables: one slot per name, read and written only under the GIL.
///
/// No reference into a slot leaves the crate: [`Globals::get`] returns a clone, so a later
/// [`Globals::set`] of the slot cannot leave a reference dangling. (`Globals::slot`, crate
/// only, lends one to the dispatch loop, which copies the value into a register at once.)
///
/// ```compile_fail,E0599
/// // A reference into a slot, then a write of that slot: the reference would dangle.
/// use mini::{gil::Gil, value::Value, vm::Globals};
/// fn read_then_write(globals: &Globals, gil: Gil) {
///     let r: &Value = globals.get_ref(0, gil);
///     globals.set(0, Value::Nil, gil);
///     let _ = r.clone();
/// }
/// ```
///
/// ```
/// // What the interpreter does instead: the value read is its own.
/// use mini::{gil::Gil, value::Value, vm::Globals};
/// fn read_then_write(globals: &Globals, gil: Gil) -> Value {
///     let v = globals.get(0, gil);
///     globals.set(0, Value::Nil, gil);
///     v
/// }
/// ```
pub struct Globals(Box<[UnsafeCell<Value>]>);

impl Globals {
    /// A clone of the value in slot `g` (`Undef` when the global has no value yet).
    #[inline(always)]
    pub fn get(&self, g: usize, _gil: Gil) -> Value {
        // SAFETY: `Globals` is reachable only through `Rc<Shared>`, which is `!Send`, and moves
        // between threads only inside `GilBound`; so only the GIL holder gets here. No reference
        // into a slot outlives a method of `Globals`, and cloning runs no code that writes a
        // slot, so this shared reference aliases no write.
        let slot = unsafe { &*self.0[g].get() };
        match slot {
            // the most frequent heap value in a global: one reference count, no other match
            Value::Func(f) => Value::Func(f.clone()),
            other => other.clone_fast(),
        }
    }

    /// The value in slot `g`, borrowed: for the dispatch loop, which copies it into a register
    /// by variant (`copy_into!`) before anything can write a slot.
    #[inline(always)]
    pub(crate) fn slot(&self, g: usize, _gil: Gil) -> &Value {
        // SAFETY: as in `get`; the reference is tied to the GIL token's borrow of `self`, and the
        // dispatch loop clones from it before it runs any instruction that writes a slot.
        unsafe { &*self.0[g].get() }
    }

    /// Whether slot `g` holds a value.
    #[inline(always)]
    pub fn is_defined(&self, g: usize, _gil: Gil) -> bool {
        // SAFETY: as in `get`.
        unsafe { !matches!(*self.0[g].get(), Value::Undef) }
    }

    /// Empties slot `g` (to `nil`) if it holds the string `s` itself: for `g += t`, whose
    /// `SetGlobal` stores the result back at the next instruction, so that the register's
    /// reference is the only one and `t` is appended in place.
    pub fn release_str(&self, g: usize, s: &Rc<StrObj>, gil: Gil) {
        // SAFETY: as in `get`.
        let same = matches!(unsafe { &*self.0[g].get() }, Value::Str(held) if Rc::ptr_eq(held, s));
        if same {
            self.set(g, Value::Nil, gil);
        }
    }

    /// Stores into slot `g`; the old value is dropped after the slot is updated.
    pub fn set(&self, g: usize, v: Value, _gil: Gil) {
        // SAFETY: as in `get`; the old value's drop runs after the write and cannot reach
        // this slot (dropping values runs no mini code).
        let old = unsafe { std::ptr::replace(self.0[g].get(), v) };
        drop(old);
    }
}

impl std::fmt::Debug for Globals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Globals({} slots)", self.0.len())
    }
}

/// What all threads of one program share (under the GIL): globals, arguments, source.
#[derive(Debug)]
pub struct Shared {
    pub globals: Globals,
    /// The name of each global slot: all set at the start of `mini run`; at the prompt, a slot's
    /// name is set (once) before the first input that uses it runs.
    pub global_names: Box<[OnceCell<Rc<str>>]>,
    pub main: Rc<Proto>,
    pub args: Vec<String>,
    /// The program's text (at the prompt, every input so far: it grows between inputs).
    pub source: RefCell<Arc<SourceMap>>,
    /// The JIT, with `--jit`.
    pub jit: Option<Jit>,
    /// The program's modules and whether each has run.
    pub modules: modules::Modules,
}

/// How many global slots the prompt's programs have room for: as many as a slot number can
/// name, so that the slots never move (lang-spec/limits.md).
pub const PROMPT_GLOBALS: usize = u16::MAX as usize + 1;

/// One slot per name, builtins defined and every other global undefined.
fn slots_for(names: &[Rc<str>], len: usize) -> (Globals, Box<[OnceCell<Rc<str>>]>) {
    let value = |i: usize| names.get(i).and_then(|n| Builtin::from_name(n)).map_or(Value::Undef, Value::Builtin);
    let globals = Globals((0..len).map(|i| UnsafeCell::new(value(i))).collect());
    let named = (0..len).map(|i| names.get(i).map_or_else(OnceCell::new, |n| OnceCell::from(n.clone()))).collect();
    (globals, named)
}

impl Shared {
    /// The shared state of a program about to run: builtins defined, other globals undefined.
    pub fn new(program: Program, source: Arc<SourceMap>, args: Vec<String>, jit: Option<JitOptions>) -> Shared {
        let (globals, global_names) = slots_for(&program.globals, program.globals.len());
        let jit = jit.map(|options| Jit::new(options, &program.modules, program.globals.len(), source.clone()));
        let modules = modules::Modules::new(&program.modules);
        Shared { globals, global_names, main: program.main, args, source: RefCell::new(source), jit, modules }
    }

    /// The shared state of the interactive prompt (`src/repl.rs`): room for every global slot
    /// from the start, so that the slots never move while threads of earlier inputs run; each
    /// input names the slots it adds ([`Shared::name_globals`]). `main` is the empty program.
    pub fn for_prompt(main: Rc<Proto>, source: Arc<SourceMap>, jit: Option<JitOptions>) -> Shared {
        let names: Vec<Rc<str>> = Builtin::ALL.iter().map(|b| Rc::from(b.name())).collect();
        let (globals, global_names) = slots_for(&names, PROMPT_GLOBALS);
        let jit = jit.map(|options| Jit::for_prompt(options, PROMPT_GLOBALS, source.clone()));
        Shared {
            globals,
            global_names,
            main,
            args: Vec::new(),
            source: RefCell::new(source),
            jit,
            modules: modules::Modules::new(&[]),
        }
    }

    /// Names the slots from `from` on (`names` in slot order; a slot keeps its first name), and
    /// makes `source` the program's text: called at the prompt before an input runs.
    pub fn name_globals<'a>(&self, from: usize, names: impl Iterator<Item = &'a Rc<str>>, source: Arc<SourceMap>) {
        for (cell, name) in self.global_names.iter().skip(from).zip(names) {
            let _ = cell.set(name.clone());
        }
        if let Some(jit) = &self.jit {
            jit.set_source(source.clone());
        }
        *self.source.borrow_mut() = source;
    }

    /// The name of global slot `g`.
    pub fn global_name(&self, g: usize) -> &str {
        self.global_names.get(g).and_then(OnceCell::get).map_or("", |n| n)
    }
}

/// The globals the JIT reads when it compiles.
impl crate::jit::GlobalSource for Shared {
    fn value(&self, g: u16, gil: Gil) -> Value {
        self.globals.get(g as usize, gil)
    }

    fn name(&self, g: u16) -> &str {
        self.global_name(g as usize)
    }
}

/// Per-thread counters for `--stats`.
#[derive(Clone, Debug, Default)]
pub struct ThreadReport {
    pub name: String,
    pub executed: u64,
    pub gil: gil::GilStats,
    /// Time blocked per kind of wait (join, lock, queue, barrier, sleep).
    pub waits: crate::sync::wait::Waits,
}

static REPORTS: Mutex<Vec<ThreadReport>> = Mutex::new(Vec::new());

/// The reports of every thread that has finished: `main` first, then in spawn order.
pub fn thread_reports() -> Vec<ThreadReport> {
    let mut reports = REPORTS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    reports.sort_by_key(|r| r.name.parse::<u64>().unwrap_or(0));
    reports.extend(pool::reports());
    reports
}

/// The program's standard output: a buffer in front of stdout that ends the process when a
/// write fails (lang-spec/cli.md): quietly, with exit code 1, when stdout is a closed pipe (as
/// Python's documentation recommends), and with `error: cannot write to stdout: reason` for
/// any other error (a full disk, `/dev/full`). So a failed write never returns to its caller,
/// whichever thread it is on and whether it happens in `print` or in a flush.
pub struct ProgramOutput(BufWriter<Stdout>);

impl Write for ProgramOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).or_else(output_error)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().or_else(output_error)
    }
}

/// A failed write to stdout: a signal interrupting the write is retried by the caller
/// (`write_all` does); any other error ends the process.
fn output_error<T>(e: std::io::Error) -> std::io::Result<T> {
    if e.kind() == std::io::ErrorKind::Interrupted {
        return Err(e);
    }
    crate::interrupt::claim_end();
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
    }
    std::process::exit(1)
}

static STDOUT: LazyLock<Mutex<ProgramOutput>> =
    LazyLock::new(|| Mutex::new(ProgramOutput(BufWriter::new(std::io::stdout()))));
static STDOUT_IS_TTY: LazyLock<bool> = LazyLock::new(|| std::io::stdout().is_terminal());

/// Whether output goes to a terminal (then each `print` is flushed at once).
pub fn stdout_is_terminal() -> bool {
    *STDOUT_IS_TTY
}

/// The program's buffered standard output.
pub fn stdout() -> MutexGuard<'static, ProgramOutput> {
    STDOUT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Flushes program output (at exit, before errors, and after each line on a terminal).
pub fn flush_stdout() {
    let _ = stdout().flush();
}

/// Flushes program output unless another thread is writing it (used when exiting from the
/// Ctrl-C handler's thread).
pub fn try_flush_stdout() {
    if let Ok(mut out) = STDOUT.try_lock() {
        let _ = out.flush();
    }
}

/// A call in progress. `closure` is kept alive by the callee register `stack[base - 1]`, which
/// belongs to the suspended caller and is not written until this call returns.
/// The prototype's code and constants are copied here so that a return reloads them with one
/// load each instead of a chain through the closure; the prototype itself, seldom needed, is
/// read through the closure (a smaller frame is a shorter push per call).
struct Frame {
    closure: *const Closure,
    code: *const Instr,
    consts: *const Value,
    ip: usize,
    base: usize,
}

impl Frame {
    fn proto(&self) -> &Proto {
        // SAFETY: see the struct comment: the closure, which holds the prototype, outlives the
        // frame.
        unsafe { &(*self.closure).proto }
    }
}

/// One thread's interpreter: its value stack and call frames.
pub struct Vm<'g> {
    gil: Gil<'g>,
    shared: Rc<Shared>,
    stack: Vec<Value>,
    frames: Vec<Frame>,
    executed: u64,
    name: String,
    /// The frame count at which the next call is a stack overflow: `MAX_DEPTH` calls of mini
    /// functions, plus the main program's own frame on the main thread.
    frame_limit: usize,
    /// The main thread raises `interrupted` on Ctrl-C; other threads carry on until exit.
    is_main: bool,
}

impl<'g> Vm<'g> {
    pub fn new(gil: Gil<'g>, shared: Rc<Shared>) -> Vm<'g> {
        let name = std::thread::current().name().unwrap_or("mini").to_string();
        Vm {
            gil,
            shared,
            stack: Vec::with_capacity(256),
            frames: Vec::with_capacity(MAX_DEPTH + 2),
            executed: 0,
            name,
            frame_limit: MAX_DEPTH,
            is_main: false,
        }
    }

    /// Runs the program's main function.
    pub fn run_main(&mut self) -> Result<Value, Diagnostic> {
        let main = self.shared.main.clone();
        self.run_top_level(main)
    }

    /// Runs `proto` as a program's main function (at the prompt, an input): always
    /// interpreted, on an empty stack; returns what it returns.
    pub fn run_top_level(&mut self, proto: Rc<Proto>) -> Result<Value, Diagnostic> {
        let main = Rc::new(Closure::plain(proto));
        self.frame_limit = MAX_DEPTH + 1;
        self.is_main = true;
        self.frames.clear();
        self.stack.clear();
        self.stack.push(Value::Func(main.clone()));
        self.push_frame(&main, 1);
        self.run(0)
    }

    /// Calls a function value with arguments, on an empty stack (a thread's entry point).
    pub fn call_value(&mut self, f: Value, args: Vec<Value>) -> Result<Value, Diagnostic> {
        match &f {
            Value::Builtin(b) => {
                let r = self.call_builtin_outside_loop(*b, &args);
                r.map_err(|fail| self.diagnostic(fail))
            }
            Value::Func(c) => {
                let c = c.clone();
                if c.proto.nparams != args.len() {
                    let msg = arg_count_error(c.proto.nparams, args.len());
                    return Err(Diagnostic::new(msg, c.proto.span));
                }
                // a thread's entry function may run natively (the main program never does)
                if let Some(jit) = self.shared.jit.as_ref().filter(|_| !Rc::ptr_eq(&c.proto, &self.shared.main)) {
                    let room = self.frame_limit as i64 - 1;
                    match jit.enter(&c, &args, room, &*self.shared, self.gil) {
                        Entered::Interpret => {}
                        Entered::Returned(v) => return Ok(v),
                        Entered::Failed(message, frames) => return Err(self.diagnostic(Fail::Native(message, frames))),
                    }
                }
                self.stack.clear();
                self.stack.push(f.clone());
                self.stack.extend(args);
                self.push_frame(&c, 1);
                self.run(0)
            }
            other => Err(Diagnostic::new(format!("not callable: {}", other.type_name()), Span::default())),
        }
    }

    /// Calls builtin `b`. `pmap` is given how many frames the calls it makes may still use,
    /// and whether they run for the main thread (which raises `interrupted` on Ctrl-C).
    #[inline(always)]
    fn call_builtin(&self, b: Builtin, args: &[Value]) -> Result<Value, Fail> {
        if b == Builtin::Pmap {
            return self.pmap(args);
        }
        if b == Builtin::Forked {
            return self.forked(args);
        }
        builtins::call(b, args, &self.shared, self.gil)
    }

    /// `pmap`, out of the dispatch loop's way.
    #[cold]
    #[inline(never)]
    fn pmap(&self, args: &[Value]) -> Result<Value, Fail> {
        let room = self.frame_limit.saturating_sub(self.frames.len());
        pool::pmap(args, room, self.is_main, &self.shared, self.gil)
    }

    /// `forked`, out of the dispatch loop's way.
    #[cold]
    #[inline(never)]
    fn forked(&self, args: &[Value]) -> Result<Value, Fail> {
        let room = self.frame_limit.saturating_sub(self.frames.len());
        forked::forked(args, room, self.is_main, &self.shared, self.gil)
    }

    /// A `Vm` for the calls a builtin makes for a caller (`pmap`): each call may nest `room`
    /// frames deep, as it could had the caller made it; `is_main` when it runs on the main
    /// thread for the main thread (it raises `interrupted` on Ctrl-C).
    pub(crate) fn for_calls(gil: Gil<'g>, shared: Rc<Shared>, room: usize, is_main: bool) -> Vm<'g> {
        let name = std::thread::current().name().unwrap_or("mini").to_string();
        // frames grow as needed: a nested `pmap` makes one of these per level
        let frames = Vec::with_capacity(16);
        Vm { gil, shared, stack: Vec::with_capacity(64), frames, executed: 0, name, frame_limit: room, is_main }
    }

    /// Counts `n` more bytecodes as executed by this thread (the prompt's earlier inputs).
    pub(crate) fn add_executed(&mut self, n: u64) {
        self.executed += n;
    }

    /// How many bytecodes this `Vm` has executed (counted with `--stats` only).
    pub(crate) fn executed(&self) -> u64 {
        self.executed
    }

    #[inline(always)]
    fn push_frame(&mut self, closure: &Closure, base: usize) {
        let need = base + closure.proto.nregs;
        if self.stack.len() < need {
            self.stack.resize(need, Value::Nil);
        }
        let proto: &Proto = &closure.proto;
        self.frames.push(Frame { closure, code: proto.run.as_ptr(), consts: proto.consts.as_ptr(), ip: 0, base });
    }

    /// Pops the top frame, which the dispatch loop is running (so there is one), and returns
    /// how many frames are left; no `Option` to test, as `Vec::pop` would return.
    #[inline(always)]
    fn pop_frame(&mut self) -> usize {
        debug_assert!(!self.frames.is_empty(), "a frame is running");
        let left = self.frames.len() - 1;
        // SAFETY: `left` is below the length, and `Frame` has no drop glue (pointers and
        // indexes), so shortening the vector only forgets its top frame.
        unsafe { self.frames.set_len(left) };
        left
    }

    /// Records this thread's statistics for `--stats`.
    pub fn finish_thread(&self) {
        let report = ThreadReport {
            name: self.name.clone(),
            executed: self.executed + pool::take_nested_executed(),
            gil: gil::thread_stats(),
            waits: crate::sync::wait::thread_waits(),
        };
        REPORTS.lock().unwrap_or_else(|e| e.into_inner()).push(report);
    }

    /// Turns a failure into a report located at the current instruction, with the call stack.
    fn diagnostic(&self, fail: Fail) -> Diagnostic {
        let trace: Vec<TraceFrame> = self
            .frames
            .iter()
            .map(|f| TraceFrame { function: f.proto().name.to_string(), span: f.proto().spans[f.ip.saturating_sub(1)] })
            .collect();
        let span = trace.last().map_or(Span::default(), |f| f.span);
        match fail {
            Fail::Msg(message) => Diagnostic::runtime(message, span, trace),
            Fail::Native(message, native) => {
                let mut trace = trace;
                trace.extend(native);
                let span = trace.last().map_or(Span::default(), |f| f.span);
                Diagnostic::runtime(message, span, trace)
            }
            Fail::Thread(inner) => Diagnostic::raised_by_join(*inner, span, trace),
            Fail::Call(inner) => {
                let inner = *inner;
                // a call that failed before it had a frame (a builtin, a wrong argument count)
                // fails at the caller's instruction
                let span = if inner.trace.is_empty() { span } else { inner.span };
                let mut trace = trace;
                trace.extend(inner.trace);
                Diagnostic { message: inner.message, span, trace, thread_traces: inner.thread_traces }
            }
            Fail::Done(report) => *report,
            Fail::Blocking => Diagnostic::runtime("internal error: a blocking builtin escaped".into(), span, trace),
        }
    }

    /// Runs until the frame count drops back to `stop`, counting bytecodes only for `--stats`.
    /// A blocking builtin (`Fail::Blocking`) leaves the dispatch loop, is called here with the
    /// place of its call (`Vm::finish_blocking`), and the loop resumes after it. An error that
    /// a `try` of one of the run's frames handles resumes the loop at its handler (`Vm::catch`).
    fn run(&mut self, stop: usize) -> Result<Value, Diagnostic> {
        loop {
            let result = if COUNT_BYTECODES.load(std::sync::atomic::Ordering::Relaxed) {
                self.run_loop::<true>(stop)
            } else {
                self.run_loop::<false>(stop)
            };
            let result = match result {
                Err(Fail::Blocking) => match self.finish_blocking() {
                    Ok(()) => continue,
                    Err(e) => Err(e),
                },
                other => other,
            };
            // an error goes to the innermost `try` of the frames this run owns, if any
            let result = match result {
                Ok(v) => Ok(v),
                Err(fail) => match self.catch(fail, stop) {
                    Ok(()) => continue,
                    Err(d) => Err(d),
                },
            };
            self.frames.truncate(stop);
            return result;
        }
    }

    /// The dispatch loop. It stops at a failure (the frames left as they are, for `run` to
    /// report or to resume).
    #[allow(clippy::too_many_lines)]
    fn run_loop<const COUNT: bool>(&mut self, stop: usize) -> Result<Value, Fail> {
        let gil = self.gil;
        let shared = self.shared.clone();
        let jit = shared.jit.as_ref();
        // borrowed once here, so that a global's access does not chase `self.shared` each time
        let globals: &Globals = &shared.globals;
        let mut executed: u64 = 0;
        // The running function's state the handlers use most, kept in locals; the rest (its
        // closure, prototype and base) is read from the frame, `fp`, when needed, so that fewer
        // values compete for the machine's registers across the loop.
        let mut ip: *const Instr;
        let mut code: *const Instr;
        let mut consts: *const Value;
        let mut regs: *mut Value;
        // The top frame, `self.frames`' last element. Only `Call` (which resets it after its
        // push, the one place the vector can reallocate) and the returns (which step it down one
        // frame as they pop one) change `self.frames` while this loop runs: builtins get `&self`,
        // and what would run frames on this VM (`Import`, a blocking builtin) leaves the loop
        // first. So a return reads its caller's frame without waiting for the vector's new length.
        let mut fp: *mut Frame = self.frames.last_mut().expect("a frame is running");

        // SAFETY (for every use of the raw pointers below): `code` and `consts` (and the top
        // frame's `closure` and `proto`) point into the closure of the top frame, which that
        // frame's `Rc` keeps alive and which is never mutated; they are reloaded whenever the top
        // frame changes. `regs` points at `stack[base]` (`base` the top frame's); `push_frame`
        // sized the stack to `base + nregs`, every register operand and register window is below `nregs`, every constant operand indexes
        // `consts` and every jump target is inside `code` (compiler invariants, checked for every
        // compiled function by the bytecode verifier, `verify::program`, in debug and test
        // builds), and `regs` is reloaded after every operation that can grow (reallocate) the
        // stack. Only this thread touches its stack, and it holds the GIL while it runs here.
        macro_rules! load_frame {
            () => {{
                // SAFETY: `fp` points at the top frame (see its declaration).
                let fr = unsafe { &*fp };
                code = fr.code;
                consts = fr.consts;
                // SAFETY: a frame's saved ip is an index into its own code.
                ip = unsafe { code.add(fr.ip) };
                // SAFETY: `push_frame` sized the stack to at least `base + nregs`.
                regs = unsafe { self.stack.as_mut_ptr().add(fr.base) };
            }};
        }
        macro_rules! reg {
            ($i:expr) => {
                // SAFETY: register operands are below the frame's `nregs` (compiler invariant,
                // checked by the verifier), and the stack holds `base + nregs` values.
                unsafe { &*regs.add($i as usize) }
            };
        }
        macro_rules! take {
            ($i:expr) => {
                // SAFETY: as in `reg!`; `take` leaves a valid `Nil` behind.
                unsafe { std::mem::take(&mut *regs.add($i as usize)) }
            };
        }
        macro_rules! regs_slice {
            ($i:expr, $n:expr) => {
                // SAFETY: as in `reg!`: the verifier checks every register window `R[i..i+n]`
                // (a call's, a list's, a dict's) against `nregs`.
                unsafe { std::slice::from_raw_parts(regs.add($i as usize), $n as usize) }
            };
        }
        macro_rules! frame_regs {
            () => {{
                let n = proto!().nregs;
                // SAFETY: as in `reg!`: the stack holds `base + nregs` values from `regs`, and no
                // other reference into the registers is live while the slice is used.
                unsafe { std::slice::from_raw_parts_mut(regs, n) }
            }};
        }
        macro_rules! set {
            ($i:expr, $v:expr) => {{
                let v = $v;
                // SAFETY: as in `reg!`. No reference into the register is live here (operands
                // were read before). The old value is dropped in place only when it owns a
                // reference, then overwritten without a second drop.
                unsafe { write_typed(regs.add($i as usize), v) }
            }};
        }
        // Typed writes: a scalar result is stored straight into the register. (A shared `set!`
        // tail would pass the whole `Value` through memory, and reloading 16 bytes written as
        // a 1-byte tag and an 8-byte payload defeats store-to-load forwarding.)
        macro_rules! set_scalar {
            ($i:expr, $variant:ident, $v:expr) => {{
                let v = $v;
                // SAFETY: as in `set!`.
                unsafe { write_typed(regs.add($i as usize), Value::$variant(v)) }
            }};
        }
        // R[i] := a clone of the value `$src` (a reference), written by variant as `set_scalar!`
        // writes: numbers, booleans and functions (the callee of most calls) never pass through
        // a 16-byte temporary.
        macro_rules! copy_into {
            ($i:expr, $src:expr) => {{
                match $src {
                    Value::Int(x) => set_scalar!($i, Int, *x),
                    Value::Float(x) => set_scalar!($i, Float, *x),
                    Value::Bool(x) => set_scalar!($i, Bool, *x),
                    Value::Func(f) => {
                        let f = Rc::clone(f);
                        set_scalar!($i, Func, f)
                    }
                    other => set!($i, other.clone()),
                }
            }};
        }
        // The int in R[i], which the verifier proves holds one (a counted loop's registers).
        macro_rules! int_payload {
            ($i:expr) => {
                match reg!($i) {
                    Value::Int(x) => *x,
                    // SAFETY: `ForPrep` stores ints in R[a..a+3] and only `ForLoop` writes them
                    // after it; the bytecode verifier (`verify.rs`, run on every compiled
                    // function in debug and test builds) proves `ForLoop` meets only ints there.
                    _ => unsafe { std::hint::unreachable_unchecked() },
                }
            };
        }
        macro_rules! konst {
            ($k:expr) => {
                // SAFETY: constant operands index the prototype's constant table (compiler
                // invariant, checked by the verifier); the prototype is alive while its frame runs.
                unsafe { &*consts.add($k as usize) }
            };
        }
        macro_rules! jump {
            ($t:expr) => {
                // SAFETY: jump targets are indices into the same function's code (compiler
                // invariant: every target is patched to a position inside the function; the
                // verifier checks every target is below the code's length).
                unsafe { code.add($t as usize) }
            };
        }
        macro_rules! proto {
            () => {
                // SAFETY: `fp` points at the top frame, whose prototype is alive while it runs.
                unsafe { &(*(*fp).closure).proto }
            };
        }
        macro_rules! upvals {
            () => {
                // SAFETY: `fp` points at the top frame, whose closure is alive while it runs.
                unsafe { &(*(*fp).closure).upvals }
            };
        }
        macro_rules! jump_unless {
            ($cond:expr, $t:expr) => {
                if !$cond {
                    ip = jump!($t);
                }
            };
        }
        // A loop's test on two ints, run by its back edge at `target`: on to the body or out.
        macro_rules! int_test {
            ($target:expr, $x:expr, $y:expr, $op:tt, $t:expr) => {
                if let (&Value::Int(x), &Value::Int(y)) = ($x, $y) {
                    if COUNT {
                        executed += 1;
                    }
                    // SAFETY: a test is never the last instruction (the verifier: no
                    // instruction falls off the end of the code).
                    ip = if x $op y { unsafe { $target.add(1) } } else { jump!($t) };
                    continue;
                }
            };
        }
        macro_rules! save_ip {
            () => {
                // SAFETY: `fp` points at the top frame (see its declaration), which no reference
                // borrows here; `ip` points into `code` (at most one past the current
                // instruction).
                unsafe { (*fp).ip = ip.offset_from(code) as usize };
            };
        }
        macro_rules! throw {
            ($e:expr) => {{
                save_ip!();
                break Err(Fail::from($e));
            }};
        }
        macro_rules! safe_point {
            () => {
                if gil.needs_attention() {
                    save_ip!();
                    if self.is_main && gil::interrupted() {
                        throw!("interrupted");
                    }
                    collect_or_yield(gil);
                }
            };
        }
        macro_rules! arith {
            ($a:expr, $x:expr, $y:expr, $op:expr, $checked:ident, $fop:tt) => {{
                match ($x, $y) {
                    (Value::Int(x), Value::Int(y)) => match x.$checked(*y) {
                        Some(v) => set_scalar!($a, Int, v),
                        None => throw!(ops::OVERFLOW),
                    },
                    (Value::Float(x), Value::Float(y)) => {
                        let v = x $fop y;
                        set_scalar!($a, Float, v)
                    }
                    // an int meeting a float is converted (`ops::arith`'s rule), inline but
                    // after the same-type cases, which it must not slow down
                    (x, y) => match (x, y) {
                        (Value::Int(x), Value::Float(y)) => {
                            std::hint::cold_path();
                            set_scalar!($a, Float, (*x as f64) $fop y)
                        }
                        (Value::Float(x), Value::Int(y)) => {
                            std::hint::cold_path();
                            set_scalar!($a, Float, x $fop (*y as f64))
                        }
                        (x, y) => match ops::arith($op, x, y, gil) {
                            Ok(v) => set!($a, v),
                            Err(e) => throw!(e),
                        },
                    },
                }
            }};
        }
        // A fused `Mul` and the `Add` or `Sub` after it (`bytecode::fuse`): R[t] := R[b] * R[c]
        // as `Mul` does; then, when R[x] holds a number of the product's type, R[a] := the
        // second operation (`$fe` on floats, `$ie` on ints, of the product `$v` and R[x] as
        // `$y`) and the second instruction is stepped over, else (an int overflow included) it
        // runs as usual and raises its own errors. The fast paths need R[t] and R[a] to hold
        // no heap value (`scalar`), so that their writes (`put!`) drop nothing: with a drop call
        // possible between the two writes, the product was spilled to the stack and reloaded.
        macro_rules! mul_then {
            ($t:expr, $b:expr, $c:expr, $a:expr, $x:expr, |$v:ident, $y:ident| $fe:expr, $ie:expr) => {{
                let scalar = !reg!($t).is_heap() && !reg!($a).is_heap();
                match (reg!($b), reg!($c)) {
                    (&Value::Float(p), &Value::Float(q)) if scalar => {
                        let $v = p * q;
                        then_second!($t, $a, $x, Float, $v, $y, Some($fe));
                    }
                    (&Value::Int(p), &Value::Int(q)) if scalar => match p.checked_mul(q) {
                        Some($v) => then_second!($t, $a, $x, Int, $v, $y, $ie),
                        None => throw!(ops::OVERFLOW),
                    },
                    _ => arith!($t, reg!($b), reg!($c), BinOp::Mul, checked_mul, *),
                }
            }};
        }
        // R[i] := the scalar `$v`, over a register that holds no heap value (so nothing is
        // dropped): the fast paths of the fused instructions, which test that first.
        macro_rules! put {
            ($i:expr, $variant:ident, $v:expr) => {{
                let v = $v;
                // SAFETY: as in `reg!`; the register holds no heap value (the caller tested
                // `is_heap`, and only these writes of scalars came since), so the value
                // overwritten owns nothing and needs no drop.
                unsafe { std::ptr::write(regs.add($i as usize), Value::$variant(v)) }
            }};
        }
        // The rest of a fused pair's fast path, once its first result `$v` is known: R[t] := $v;
        // then, when R[x] holds a `$variant` (read after the write: R[x] may be R[t]) and the
        // second operation `$e` (of `$v` and R[x] as `$y`) gives `Some`, R[a] := it and the
        // second instruction is stepped over.
        macro_rules! then_second {
            ($t:expr, $a:expr, $x:expr, $variant:ident, $v:ident, $y:ident, $e:expr) => {{
                put!($t, $variant, $v);
                if let &Value::$variant($y) = reg!($x)
                    && let Some(r) = $e
                {
                    put!($a, $variant, r);
                    step_over!();
                }
            }};
        }
        // The end of a fused instruction that ran both of its pair: past the second.
        macro_rules! step_over {
            () => {{
                if COUNT {
                    executed += 1;
                }
                // SAFETY: the second instruction of the pair is at `ip` (`fuse` pairs an
                // instruction with the one after it); it is an `Add`, `Sub`, `Mul` or `Move`,
                // which the verifier proves is not the last instruction (none falls off the
                // end), so one past it is an instruction.
                ip = unsafe { ip.add(1) };
            }};
        }
        // R[a] := R[b][R[c]], with a fast path for an element of a 1-D array.
        macro_rules! get_index {
            ($a:expr, $b:expr, $c:expr) => {{
                match (reg!($b), reg!($c)) {
                    (Value::Array(arr), Value::Int(i)) if (*i as u64) < arr.len() as u64 && arr.dims.is_empty() => {
                        let bits = arr.data[*i as usize].load(std::sync::atomic::Ordering::Relaxed);
                        match arr.kind {
                            crate::value::ElemKind::Float => set_scalar!($a, Float, f64::from_bits(bits)),
                            crate::value::ElemKind::Int => set_scalar!($a, Int, bits as i64),
                        }
                    }
                    (x, y) => match index::get(x, y, gil) {
                        Ok(v) => set!($a, v),
                        Err(e) => throw!(e),
                    },
                }
            }};
        }
        // A fused `GetIndex` and the arithmetic after it (`bytecode::fuse`), as `mul_then!`:
        // R[t] := R[b][R[c]]; then, when that is an element of a 1-D array and R[x] holds a
        // number of its type, R[a] := `$fe` (floats) or `$ie` (ints, `None` on overflow) and the
        // second instruction is stepped over. One test per element type, not a match on the
        // type after a shared load: merged, the float path kept its element on the stack.
        macro_rules! index_then {
            ($t:expr, $b:expr, $c:expr, $a:expr, $x:expr, |$v:ident, $y:ident| $fe:expr, $ie:expr) => {{
                // R[t] holding no heap value is not R[b], the array, which `put!` then keeps
                let scalar = !reg!($t).is_heap() && !reg!($a).is_heap();
                if scalar && let Some(bits) = element_bits!($b, $c, crate::value::ElemKind::Float) {
                    let $v = f64::from_bits(bits);
                    then_second!($t, $a, $x, Float, $v, $y, Some($fe));
                } else if scalar && let Some(bits) = element_bits!($b, $c, crate::value::ElemKind::Int) {
                    let $v = bits as i64;
                    then_second!($t, $a, $x, Int, $v, $y, $ie);
                } else {
                    get_index!($t, $b, $c)
                }
            }};
        }
        // The bits of R[b][R[c]] when R[b] is a 1-D array of element type `$kind` and R[c] an
        // index in range.
        macro_rules! element_bits {
            ($b:expr, $c:expr, $kind:expr) => {
                match (reg!($b), reg!($c)) {
                    (Value::Array(arr), &Value::Int(i))
                        if (i as u64) < arr.len() as u64 && arr.dims.is_empty() && arr.kind == $kind =>
                    {
                        Some(arr.data[i as usize].load(std::sync::atomic::Ordering::Relaxed))
                    }
                    _ => None,
                }
            };
        }
        // `+` as `arith!` does, and `s += t` (`a == b`) on strings appends in place when the
        // register holds the only reference to `s` (`ops::add_assign_str`).
        macro_rules! add {
            ($a:expr, $b:expr, $y:expr) => {{
                match (reg!($b), $y) {
                    (Value::Int(x), Value::Int(y)) => match x.checked_add(*y) {
                        Some(v) => set_scalar!($a, Int, v),
                        None => throw!(ops::OVERFLOW),
                    },
                    (Value::Float(x), Value::Float(y)) => {
                        let v = x + y;
                        set_scalar!($a, Float, v)
                    }

                    (Value::Str(s), Value::Str(tail)) if $a == $b => {
                        // a global's `g += t` is `GetGlobal`, `Add`, `SetGlobal`: the slot's
                        // reference is dropped here and the next instruction stores the result
                        // back, with no safe point (and so no other thread) in between
                        if Rc::strong_count(s) == 2
                            // SAFETY: `Add` never ends the code (the verifier checks that no
                            // instruction falls off its end), so `ip` points at an instruction.
                            && let Instr::SetGlobal { a: from, g } = unsafe { *ip }
                            && from == $a
                        {
                            globals.release_str(g as usize, s, gil);
                        }
                        // an owned reference: `tail` may be `s` itself (`s += s`), which then
                        // counts twice and is copied, not appended to itself
                        let tail = Rc::clone(tail);
                        // SAFETY: as in `reg!`; no reference into the registers is live (the
                        // operands were read, and `tail` is owned).
                        ops::add_assign_str(unsafe { &mut *regs.add($a as usize) }, &tail);
                    }
                    (x, y) => match (x, y) {
                        (Value::Int(x), Value::Float(y)) => {
                            std::hint::cold_path();
                            set_scalar!($a, Float, (*x as f64) + y)
                        }
                        (Value::Float(x), Value::Int(y)) => {
                            std::hint::cold_path();
                            set_scalar!($a, Float, x + (*y as f64))
                        }
                        (x, y) => match ops::arith(BinOp::Add, x, y, gil) {
                            Ok(v) => set!($a, v),
                            Err(e) => throw!(e),
                        },
                    },
                }
            }};
        }
        macro_rules! slow_arith {
            ($a:expr, $x:expr, $y:expr, $op:expr) => {{
                match ops::arith($op, $x, $y, gil) {
                    Ok(v) => set!($a, v),
                    Err(e) => throw!(e),
                }
            }};
        }
        macro_rules! bitwise {
            ($a:expr, $x:expr, $y:expr, $op:expr) => {{
                match ($x, $y) {
                    (Value::Int(x), Value::Int(y)) => match ops::int_bitwise($op, *x, *y) {
                        Ok(v) => set_scalar!($a, Int, v),
                        Err(e) => throw!(e),
                    },
                    (x, y) => throw!(ops::type_error($op, x, y)),
                }
            }};
        }
        macro_rules! divide {
            ($a:expr, $x:expr, $y:expr) => {{
                match ($x, $y) {
                    (Value::Float(x), Value::Float(y)) if *y != 0.0 => set_scalar!($a, Float, x / y),
                    (x, y) => match (x, y) {
                        (Value::Int(x), Value::Float(y)) if *y != 0.0 => set_scalar!($a, Float, (*x as f64) / y),
                        (Value::Float(x), Value::Int(y)) if *y != 0 => set_scalar!($a, Float, x / (*y as f64)),
                        (Value::Int(x), Value::Int(y)) if *y != 0 => {
                            set_scalar!($a, Float, (*x as f64) / (*y as f64))
                        }
                        (x, y) => slow_arith!($a, x, y, BinOp::Div),
                    },
                }
            }};
        }
        macro_rules! compare {
            ($x:expr, $y:expr, $op:expr, $cmp:tt) => {{
                match ($x, $y) {
                    (Value::Int(x), Value::Int(y)) => x $cmp y,
                    (Value::Float(x), Value::Float(y)) => x $cmp y,
                    (x, y) => match ops::compare_op($op, x, y, gil) {
                        Ok(b) => b,
                        Err(e) => throw!(e),
                    },
                }
            }};
        }
        macro_rules! equal {
            ($x:expr, $y:expr) => {{
                match ($x, $y) {
                    (Value::Int(x), Value::Int(y)) => x == y,
                    (x, y) => match values_equal(x, y, gil) {
                        Ok(b) => b,
                        Err(e) => throw!(e),
                    },
                }
            }};
        }

        load_frame!();
        let result: Result<Value, Fail> = loop {
            if COUNT {
                executed += 1;
            }
            // SAFETY: `ip` points at an instruction of the running function: no instruction
            // falls off the end of the code and jumps stay inside it (both checked by the
            // verifier).
            let ins: &Instr = unsafe { &*ip };
            // SAFETY: as above; at most one past the current instruction.
            ip = unsafe { ip.add(1) };
            match *ins {
                Instr::LoadNil { a } => set!(a, Value::Nil),
                Instr::LoadBool { a, b } => set_scalar!(a, Bool, b),
                Instr::LoadInt { a, v } => set_scalar!(a, Int, v as i64),
                Instr::LoadK { a, k } => copy_into!(a, konst!(k)),
                Instr::Move { a, b } => copy_into!(a, reg!(b)),
                Instr::Move2 { a, b, c, d } => {
                    copy_into!(a, reg!(b));
                    copy_into!(c, reg!(d));
                    step_over!();
                }
                Instr::GetGlobal { a, g } => {
                    let v = globals.slot(g as usize, gil);
                    // a function first, by a test of its own: most globals read are called
                    if let Value::Func(f) = v {
                        let f = Rc::clone(f);
                        set_scalar!(a, Func, f);
                        continue;
                    }
                    if let Value::Undef = v {
                        throw!(format!("undefined variable '{}'", self.shared.global_name(g as usize)));
                    }
                    copy_into!(a, v);
                }
                Instr::SetGlobal { a, g } => {
                    if !globals.is_defined(g as usize, gil) {
                        throw!(format!("undefined variable '{}'", self.shared.global_name(g as usize)));
                    }
                    globals.set(g as usize, reg!(a).clone_fast(), gil);
                    if let Some(jit) = jit {
                        jit.global_written(g as usize, reg!(a));
                    }
                }
                Instr::DefGlobal { a, g } => {
                    globals.set(g as usize, reg!(a).clone_fast(), gil);
                    if let Some(jit) = jit {
                        jit.global_written(g as usize, reg!(a));
                    }
                }
                Instr::GetUpval { a, u, k } => {
                    let v = upvals!()[u as usize].borrow(gil).clone();
                    if let Value::Undef = v {
                        throw!(undefined(konst!(k)));
                    }
                    set!(a, v);
                }
                Instr::SetUpval { a, u, k } => {
                    let v = reg!(a).clone();
                    let cell = &upvals!()[u as usize];
                    if let Value::Undef = *cell.borrow(gil) {
                        throw!(undefined(konst!(k)));
                    }
                    let old = std::mem::replace(&mut *cell.borrow_mut_to_store(&v, gil), v);
                    drop(old);
                }
                Instr::NewEmptyCell { a } => set!(a, Value::cell(Value::Undef, gil)),
                Instr::NewCell { a } => {
                    let v = take!(a);
                    set!(a, Value::cell(v, gil));
                }
                Instr::GetCell { a, b, k } => {
                    let v = match reg!(b) {
                        Value::Cell(c) => c.borrow(gil).clone(),
                        // the verifier proves R[b] holds a cell (verify.rs)
                        other => throw!(format!("internal error: GetCell of a {}", other.type_name())),
                    };
                    if let Value::Undef = v {
                        throw!(undefined(konst!(k)));
                    }
                    set!(a, v);
                }
                Instr::SetCell { a, b } => {
                    let v = reg!(b).clone();
                    let Value::Cell(c) = reg!(a) else {
                        // the verifier proves R[a] holds a cell (verify.rs)
                        throw!(format!("internal error: SetCell of a {}", reg!(a).type_name()));
                    };
                    let old = std::mem::replace(&mut *c.borrow_mut_to_store(&v, gil), v);
                    drop(old);
                }
                Instr::Closure { a, p } => {
                    let child = proto!().protos[p as usize].clone();
                    // The closure below captures copies: were `regs` itself captured, its address
                    // would escape, and LLVM would keep it in memory for the whole loop,
                    // reloading it after every store into a register.
                    let (window, enclosing) = (regs, upvals!());
                    let upvals: Option<Box<[_]>> = child
                        .captures
                        .iter()
                        .map(move |cap| match cap {
                            // SAFETY: as in `reg!` (`window` is `regs`).
                            Capture::Local(r) => match unsafe { &*window.add(*r as usize) } {
                                Value::Cell(c) => Some(c.clone()),
                                _ => None,
                            },
                            Capture::Upval(u) => Some(enclosing[*u as usize].clone()),
                        })
                        .collect();
                    let Some(upvals) = upvals else {
                        // the verifier proves every captured register holds a cell (verify.rs)
                        throw!("internal error: a captured register holds no cell");
                    };
                    set!(a, Value::Func(Closure::new(child, upvals, gil)));
                }
                Instr::Add { a, b, c } => add!(a, b, reg!(c)),
                Instr::Sub { a, b, c } => arith!(a, reg!(b), reg!(c), BinOp::Sub, checked_sub, -),
                Instr::Mul { a, b, c } => arith!(a, reg!(b), reg!(c), BinOp::Mul, checked_mul, *),
                Instr::MulAdd { t, b, c, a, x } => mul_then!(t, b, c, a, x, |v, y| y + v, y.checked_add(v)),
                Instr::MulAddT { t, b, c, a, x } => mul_then!(t, b, c, a, x, |v, y| v + y, v.checked_add(y)),
                Instr::MulSub { t, b, c, a, x } => mul_then!(t, b, c, a, x, |v, y| y - v, y.checked_sub(v)),
                Instr::AddK { a, b, k } => add!(a, b, konst!(k)),
                Instr::SubK { a, b, k } => arith!(a, reg!(b), konst!(k), BinOp::Sub, checked_sub, -),
                Instr::MulK { a, b, k } => arith!(a, reg!(b), konst!(k), BinOp::Mul, checked_mul, *),
                Instr::KAdd { a, b, k } => arith!(a, konst!(k), reg!(b), BinOp::Add, checked_add, +),
                Instr::KSub { a, b, k } => arith!(a, konst!(k), reg!(b), BinOp::Sub, checked_sub, -),
                Instr::KMul { a, b, k } => arith!(a, konst!(k), reg!(b), BinOp::Mul, checked_mul, *),
                Instr::Div { a, b, c } => divide!(a, reg!(b), reg!(c)),
                Instr::DivK { a, b, k } => divide!(a, reg!(b), konst!(k)),
                Instr::KDiv { a, b, k } => divide!(a, konst!(k), reg!(b)),
                Instr::FloorDiv { a, b, c } => match (reg!(b), reg!(c)) {
                    (Value::Int(x), Value::Int(y)) => match ops::int_floordiv(*x, *y) {
                        Ok(v) => set_scalar!(a, Int, v),
                        Err(e) => throw!(e),
                    },
                    (x, y) => slow_arith!(a, x, y, BinOp::FloorDiv),
                },
                Instr::Mod { a, b, c } => match (reg!(b), reg!(c)) {
                    (Value::Int(x), Value::Int(y)) => match ops::int_mod(*x, *y) {
                        Ok(v) => set_scalar!(a, Int, v),
                        Err(e) => throw!(e),
                    },
                    (x, y) => slow_arith!(a, x, y, BinOp::Mod),
                },
                Instr::ModK { a, b, k } => match (reg!(b), konst!(k)) {
                    // a constant divisor in 2..2^32 and 0 <= x < 2^32: multiply, not divide
                    (&Value::Int(x), &Value::Int(y))
                        if (x as u64) <= u32::MAX as u64
                            && let Some(&m) = proto!().mod_multipliers.get(k as usize)
                            && m != 0 =>
                    {
                        set_scalar!(a, Int, crate::num::fast_mod(x as u32, m, y as u32) as i64)
                    }
                    (Value::Int(x), Value::Int(y)) => match ops::int_mod(*x, *y) {
                        Ok(v) => set_scalar!(a, Int, v),
                        Err(e) => throw!(e),
                    },
                    (x, y) => slow_arith!(a, x, y, BinOp::Mod),
                },
                Instr::Pow { a, b, c } => slow_arith!(a, reg!(b), reg!(c), BinOp::Pow),
                Instr::Neg { a, b } => match reg!(b) {
                    Value::Float(x) => set_scalar!(a, Float, -x),
                    other => match ops::negate(other) {
                        Ok(v) => set!(a, v),
                        Err(e) => throw!(e),
                    },
                },
                Instr::BitAnd { a, b, c } => bitwise!(a, reg!(b), reg!(c), BinOp::BitAnd),
                Instr::BitOr { a, b, c } => bitwise!(a, reg!(b), reg!(c), BinOp::BitOr),
                Instr::BitXor { a, b, c } => bitwise!(a, reg!(b), reg!(c), BinOp::BitXor),
                Instr::Shl { a, b, c } => bitwise!(a, reg!(b), reg!(c), BinOp::Shl),
                Instr::Shr { a, b, c } => bitwise!(a, reg!(b), reg!(c), BinOp::Shr),
                Instr::BitNot { a, b } => match reg!(b) {
                    Value::Int(x) => set_scalar!(a, Int, !x),
                    other => match ops::bit_not(other) {
                        Ok(v) => set!(a, v),
                        Err(e) => throw!(e),
                    },
                },
                Instr::Not { a, b } => {
                    let t = reg!(b).truthy(gil);
                    set_scalar!(a, Bool, !t);
                }
                Instr::Eq { a, b, c } => set_scalar!(a, Bool, equal!(reg!(b), reg!(c))),
                Instr::Ne { a, b, c } => set_scalar!(a, Bool, !equal!(reg!(b), reg!(c))),
                Instr::Lt { a, b, c } => set_scalar!(a, Bool, compare!(reg!(b), reg!(c), BinOp::Lt, <)),
                Instr::Le { a, b, c } => set_scalar!(a, Bool, compare!(reg!(b), reg!(c), BinOp::Le, <=)),
                Instr::Gt { a, b, c } => set_scalar!(a, Bool, compare!(reg!(b), reg!(c), BinOp::Gt, >)),
                Instr::Ge { a, b, c } => set_scalar!(a, Bool, compare!(reg!(b), reg!(c), BinOp::Ge, >=)),
                Instr::Jump { t } => {
                    let target = jump!(t);
                    if target < ip {
                        if jit.is_some() {
                            proto!().jit.backedge();
                        }
                        safe_point!();
                        // The back edge of a `while` loop whose test compares ints runs that
                        // test here: one dispatch less per iteration, as a rotated loop has.
                        // SAFETY: `target` points into the code (as `jump!`).
                        match unsafe { *target } {
                            Instr::JumpIfNotLt { a, b, t } => int_test!(target, reg!(a), reg!(b), <, t),
                            Instr::JumpIfNotLe { a, b, t } => int_test!(target, reg!(a), reg!(b), <=, t),
                            Instr::JumpIfNotGt { a, b, t } => int_test!(target, reg!(a), reg!(b), >, t),
                            Instr::JumpIfNotGe { a, b, t } => int_test!(target, reg!(a), reg!(b), >=, t),
                            Instr::JumpIfNotLtK { a, k, t } => int_test!(target, reg!(a), konst!(k), <, t),
                            Instr::JumpIfNotGtK { a, k, t } => int_test!(target, reg!(a), konst!(k), >, t),
                            _ => {}
                        }
                    }
                    ip = target;
                }
                Instr::JumpIfFalse { a, t } => {
                    let truthy = match reg!(a) {
                        Value::Bool(b) => *b,
                        other => other.truthy(gil),
                    };
                    if !truthy {
                        ip = jump!(t);
                    }
                }
                Instr::JumpIfTrue { a, t } => {
                    let truthy = match reg!(a) {
                        Value::Bool(b) => *b,
                        other => other.truthy(gil),
                    };
                    if truthy {
                        ip = jump!(t);
                    }
                }
                Instr::JumpIfNotLt { a, b, t } => jump_unless!(compare!(reg!(a), reg!(b), BinOp::Lt, <), t),
                Instr::JumpIfNotLe { a, b, t } => jump_unless!(compare!(reg!(a), reg!(b), BinOp::Le, <=), t),
                Instr::JumpIfNotGt { a, b, t } => jump_unless!(compare!(reg!(a), reg!(b), BinOp::Gt, >), t),
                Instr::JumpIfNotGe { a, b, t } => jump_unless!(compare!(reg!(a), reg!(b), BinOp::Ge, >=), t),
                Instr::JumpIfNotLtK { a, k, t } => jump_unless!(compare!(reg!(a), konst!(k), BinOp::Lt, <), t),
                Instr::JumpIfNotLeK { a, k, t } => jump_unless!(compare!(reg!(a), konst!(k), BinOp::Le, <=), t),
                Instr::JumpIfNotGtK { a, k, t } => jump_unless!(compare!(reg!(a), konst!(k), BinOp::Gt, >), t),
                Instr::JumpIfNotGeK { a, k, t } => jump_unless!(compare!(reg!(a), konst!(k), BinOp::Ge, >=), t),
                Instr::JumpIfNotEq { a, b, t } => jump_unless!(equal!(reg!(a), reg!(b)), t),
                Instr::JumpIfNotNe { a, b, t } => jump_unless!(!equal!(reg!(a), reg!(b)), t),
                Instr::ForPrep { a, t } => {
                    let (start, stop, step) = match (reg!(a), reg!(a as usize + 1), reg!(a as usize + 2)) {
                        (Value::Int(x), Value::Int(y), Value::Int(z)) if *z != 0 => (*x, *y, *z),
                        (x, y, z) => {
                            // SAFETY: `ip` is one past this instruction, inside `code`.
                            let pc = unsafe { ip.offset_from(code) } as usize - 1;
                            throw!(prange::range_error(prange::loop_name(proto!(), pc), x, y, z))
                        }
                    };
                    match for_count(start, stop, step) {
                        None => ip = jump!(t),
                        Some(count) => {
                            // R[a+1] becomes the count of iterations left after this one (Lua
                            // 5.4's way): `ForLoop` then needs one test and no overflow check
                            set_scalar!(a as usize + 1, Int, count as i64);
                            set_scalar!(a as usize + 3, Int, start);
                        }
                    }
                }
                Instr::ForLoop { a, t } => {
                    let count = int_payload!(a as usize + 1);
                    if count != 0 {
                        // inside the range: `next` cannot overflow (ForPrep counted the steps)
                        let next = int_payload!(a).wrapping_add(int_payload!(a as usize + 2));
                        // SAFETY: as in `reg!`; R[a] and R[a+1] hold ints (`int_payload!`), so
                        // they are overwritten with nothing to drop.
                        unsafe {
                            std::ptr::write(regs.add(a as usize), Value::Int(next));
                            std::ptr::write(regs.add(a as usize + 1), Value::Int(count.wrapping_sub(1)));
                        }
                        set_scalar!(a as usize + 3, Int, next);
                        if jit.is_some() {
                            proto!().jit.backedge();
                        }
                        safe_point!();
                        ip = jump!(t);
                    }
                }
                Instr::IterPrep { a } => {
                    let seq = match index::iterable(reg!(a), gil) {
                        Ok(v) => v,
                        Err(e) => throw!(e),
                    };
                    set!(a, seq);
                    set_scalar!(a as usize + 1, Int, 0);
                }
                Instr::IterNext { a, t } => {
                    let pos = match reg!(a as usize + 1) {
                        Value::Int(p) => *p as usize,
                        _ => unreachable!("IterPrep set the position"),
                    };
                    match index::next(reg!(a), pos, gil) {
                        Some((v, next)) => {
                            set_scalar!(a as usize + 1, Int, next as i64);
                            set!(a as usize + 2, v);
                        }
                        // no item in a queue: `run` waits for one (`finish_blocking`)
                        None if matches!(reg!(a), Value::Queue(_)) => {
                            save_ip!();
                            break Err(Fail::Blocking);
                        }
                        None => ip = jump!(t),
                    }
                }
                Instr::Call { a, n } => match reg!(a) {
                    Value::Func(c) => {
                        let c: *const Closure = Rc::as_ptr(c);
                        // SAFETY: the callee register R[a] holds the closure and is not written
                        // until the call returns (see `Frame`).
                        let callee = unsafe { &*c };
                        let nparams = callee.proto.nparams;
                        if nparams != n as usize {
                            throw!(arg_count_error(nparams, n as usize));
                        }
                        if self.frames.len() >= self.frame_limit {
                            throw!("stack overflow");
                        }
                        if let Some(jit) = jit
                            && !callee.proto.jit.interpreter_first()
                        {
                            let room = (self.frame_limit - self.frames.len()) as i64 - 1;
                            let args = regs_slice!(a as usize + 1, n);
                            match jit.enter(callee, args, room, &*shared, gil) {
                                Entered::Interpret => {}
                                Entered::Returned(v) => {
                                    set!(a, v);
                                    continue;
                                }
                                Entered::Failed(message, frames) => {
                                    save_ip!();
                                    break Err(Fail::Native(message, frames));
                                }
                            }
                        }
                        save_ip!();
                        // SAFETY: `fp` points at the top frame (see its declaration).
                        let base = unsafe { (*fp).base } + a as usize + 1;
                        self.push_frame(callee, base);
                        // SAFETY: `push_frame` just pushed a frame, so the vector is not empty.
                        fp = unsafe { self.frames.as_mut_ptr().add(self.frames.len() - 1) };
                        // the callee's state, as `load_frame!` would read it back from the frame
                        code = callee.proto.run.as_ptr();
                        consts = callee.proto.consts.as_ptr();
                        ip = code;
                        // SAFETY: `push_frame` sized the stack to at least `base + nregs`.
                        regs = unsafe { self.stack.as_mut_ptr().add(base) };
                        safe_point!();
                    }
                    Value::Builtin(b) => {
                        // a builtin through a variable (a `CallBuiltin` otherwise): rare
                        std::hint::cold_path();
                        let b = *b;
                        save_ip!();
                        let args = regs_slice!(a as usize + 1, n);
                        match self.call_builtin(b, args) {
                            Ok(v) => set!(a, v),
                            Err(e) => break Err(e),
                        }
                    }
                    other => throw!(format!("not callable: {}", other.type_name())),
                },
                Instr::CallBuiltin { a, n, f } => {
                    if let (1, Value::Float(x)) = (n, reg!(a))
                        && let Some(v) = builtins::float_math(f, *x)
                    {
                        set_scalar!(a, Float, v);
                        continue;
                    }
                    save_ip!();
                    let args = regs_slice!(a, n);
                    match self.call_builtin(f, args) {
                        Ok(v) => set!(a, v),
                        Err(e) => break Err(e),
                    }
                }
                Instr::Return { a } => {
                    if self.pop_frame() == stop {
                        break Ok(take!(a));
                    }
                    // SAFETY: the frame popped was `fp`'s, and more than `stop` frames remain, so
                    // at least one lies below it, in the same allocation.
                    fp = unsafe { fp.sub(1) };
                    // SAFETY: a called frame's window starts one past its callee's slot
                    // (`push_frame` is given `base + a + 1`, `call_value` and `start` base 1), so
                    // `regs - 1` is `stack[base - 1]`, the callee's slot, inside the stack.
                    let slot = unsafe { regs.sub(1) };
                    // SAFETY: every frame but the bottom one of a run was pushed over a slot
                    // holding its function (`Call` pushes only when R[a] is a `Func`; `call_value`,
                    // `call_nested` and `run_module` push the `Func` they call), and the slot is
                    // the suspended caller's register, which nothing writes until this return.
                    // Reading only the pointer (not the 16-byte value, written as a tag and a
                    // payload by `GetGlobal`) avoids a failed store-to-load forwarding.
                    let callee: *const Closure = match unsafe { &*slot } {
                        Value::Func(f) => Rc::as_ptr(f),
                        // SAFETY: the slot holds a `Func`, as argued above.
                        _ => unsafe { std::hint::unreachable_unchecked() },
                    };
                    // The result is written over the callee without dropping it (its reference
                    // is released just below), by variant in each arm, as `set_scalar!` writes: a
                    // shared store would copy the whole 16 bytes, padding included.
                    match *reg!(a) {
                        // SAFETY: the slot's reference is now held by `callee` alone, so
                        // overwriting it without a drop leaks nothing and frees nothing.
                        Value::Int(x) => unsafe { std::ptr::write(slot, Value::Int(x)) },
                        // SAFETY: as above.
                        Value::Float(x) => unsafe { std::ptr::write(slot, Value::Float(x)) },
                        _ => {
                            let v = take!(a);
                            // SAFETY: as above.
                            unsafe { std::ptr::write(slot, v) }
                        }
                    }
                    // SAFETY: `callee` came from the `Rc` the slot held, whose reference is
                    // released exactly once, here.
                    unsafe { Rc::decrement_strong_count(callee) };
                    load_frame!();
                }
                Instr::ReturnNil => {
                    if self.pop_frame() == stop {
                        break Ok(Value::Nil);
                    }
                    // SAFETY: as in `Return`.
                    fp = unsafe { fp.sub(1) };
                    // SAFETY: as in `Return`: `regs - 1` is the callee's slot, and no reference
                    // into the registers is live.
                    replace_callee(unsafe { &mut *regs.sub(1) }, Value::Nil);
                    load_frame!();
                }
                Instr::NewList { a, b, n } => {
                    let items = regs_slice!(b, n).to_vec();
                    set!(a, Value::list(items, gil));
                }
                Instr::NewDict { a, b, n } => {
                    let pairs = regs_slice!(b, 2 * n as usize);
                    match new_dict(pairs, gil) {
                        Ok(d) => set!(a, d),
                        Err(e) => throw!(e),
                    }
                }
                Instr::GetIndex { a, b, c } => get_index!(a, b, c),
                Instr::IndexAdd { t, b, c, a, x } => index_then!(t, b, c, a, x, |v, y| y + v, y.checked_add(v)),
                Instr::IndexAddT { t, b, c, a, x } => index_then!(t, b, c, a, x, |v, y| v + y, v.checked_add(y)),
                Instr::IndexSub { t, b, c, a, x } => index_then!(t, b, c, a, x, |v, y| y - v, y.checked_sub(v)),
                Instr::IndexSubT { t, b, c, a, x } => index_then!(t, b, c, a, x, |v, y| v - y, v.checked_sub(y)),
                Instr::IndexMul { t, b, c, a, x } => index_then!(t, b, c, a, x, |v, y| y * v, y.checked_mul(v)),
                Instr::IndexMulT { t, b, c, a, x } => index_then!(t, b, c, a, x, |v, y| v * y, v.checked_mul(y)),
                Instr::SetIndex { a, b, c } => {
                    // the fast path goes straight on (a result shared with the slow path would
                    // be stored to the stack at every store into an array)
                    if let (Value::Array(arr), Value::Int(i), Value::Float(f)) = (reg!(a), reg!(b), reg!(c))
                        && (*i as u64) < arr.len() as u64
                        && arr.kind == crate::value::ElemKind::Float
                        && arr.dims.is_empty()
                    {
                        arr.data[*i as usize].store(f.to_bits(), std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    if let Err(e) = index::set(reg!(a), reg!(b), reg!(c).clone(), gil) {
                        throw!(e);
                    }
                }
                // not empty: an empty arm would make the dispatch block its own successor, and
                // LLVM does not tail-duplicate a block that loops on itself
                Instr::Try => std::hint::black_box(()),
                Instr::Reraise { a } => {
                    let fail = handlers::reraise(reg!(a), gil);
                    throw!(fail)
                }
                Instr::Slice { a, b } => {
                    let r = regs_slice!(b, 4);
                    match slice::get(&r[0], &r[1], &r[2], &r[3], gil) {
                        Ok(v) => set!(a, v),
                        Err(e) => throw!(e),
                    }
                }
                Instr::GetField { a, b, k } => match fields::get(reg!(b), konst!(k), globals, gil) {
                    Ok(v) => set!(a, v),
                    Err(e) => throw!(e),
                },
                Instr::SetField { a, k, c } => {
                    if let Err(e) = fields::set(reg!(a), konst!(k), reg!(c).clone(), gil) {
                        throw!(e);
                    }
                }
                // out of the loop's way, as a blocking builtin (`Vm::finish_blocking`, `Vm::import`)
                Instr::Import { .. } => {
                    save_ip!();
                    break Err(Fail::Blocking);
                }
                Instr::PrangePrep { a, p, t } => {
                    let info = &proto!().pranges[p as usize];
                    match prange::prep(frame_regs!(), a as usize, info) {
                        Ok(true) => {}
                        Ok(false) => ip = jump!(t),
                        Err(e) => throw!(e),
                    }
                }
                Instr::PrangeBlock { a } => prange::block(frame_regs!(), a as usize),
                Instr::ReduceInit { a, b, op } => set!(a, prange::identity(op, reg!(b))),
                Instr::ReduceCombine { a, b, op } => match prange::combine(op, reg!(a), reg!(b), gil) {
                    Ok(v) => set!(a, v),
                    Err(e) => throw!(e),
                },
                Instr::PrangeNext { a, t } => {
                    if prange::next(frame_regs!(), a as usize) {
                        if jit.is_some() {
                            proto!().jit.backedge();
                        }
                        safe_point!();
                        ip = jump!(t);
                    } else {
                        prange::finished(proto!(), t);
                    }
                }
                Instr::GetIndexN { a, b, c, n } => match ndarray::element(reg!(b), regs_slice!(c, n as usize)) {
                    Some((arr, pos)) => {
                        let bits = arr.data[pos].load(std::sync::atomic::Ordering::Relaxed);
                        match arr.kind {
                            crate::value::ElemKind::Float => set_scalar!(a, Float, f64::from_bits(bits)),
                            crate::value::ElemKind::Int => set_scalar!(a, Int, bits as i64),
                        }
                    }
                    None => match ndarray::get(reg!(b), regs_slice!(c, n as usize)) {
                        Ok(v) => set!(a, v),
                        Err(e) => throw!(e),
                    },
                },
                Instr::SetIndexN { a, b, c, n } => {
                    let r = match (ndarray::element(reg!(a), regs_slice!(b, n as usize)), reg!(c)) {
                        (Some((arr, pos)), v) => arr.set(pos, v).map_err(Fail::from),
                        (None, v) => ndarray::set(reg!(a), regs_slice!(b, n as usize), v),
                    };
                    if let Err(e) = r {
                        throw!(e);
                    }
                }
            }
        };
        self.executed += executed;
        result
    }
}

/// `undefined variable 'x'`, for the name in a string constant.
fn undefined(name: &Value) -> String {
    let name = match name {
        Value::Str(s) => &*s.text,
        _ => "?",
    };
    format!("undefined variable '{name}'")
}

/// A dict from consecutive key, value registers.
fn new_dict(pairs: &[Value], gil: Gil) -> Result<Value, Fail> {
    let mut map = IndexMap::with_capacity(pairs.len() / 2);
    for kv in pairs.chunks_exact(2) {
        map.insert(builtins::key_of(&kv[0])?, kv[1].clone());
    }
    Ok(Value::dict(map, gil))
}

/// The rest of a safe point's work (out of line, to keep the dispatch loop lean): runs the cycle
/// collector if it asked to run, then hands the GIL over if another thread asked for it.
#[cold]
#[inline(never)]
fn collect_or_yield(gil: Gil) {
    crate::gc::collect_requested(gil);
    if gil.drop_requested() {
        gil.yield_now();
    }
}

/// How many more iterations a counted loop from `start` (its first) has before `stop`, by
/// `step` (not 0); `None` when the range is empty. The count may exceed `i64::MAX` (a range
/// over most of the ints), so it is unsigned; `ForLoop` keeps it as an int's bits.
fn for_count(start: i64, stop: i64, step: i64) -> Option<u64> {
    if step > 0 {
        (start < stop).then(|| (stop.wrapping_sub(start) as u64 - 1) / step as u64)
    } else {
        (start > stop).then(|| (start.wrapping_sub(stop) as u64 - 1) / step.unsigned_abs())
    }
}

/// Drops a register's old value, out of line: a register write's rare path, kept apart (and
/// after the write) so that a scalar result just computed never waits in memory for it.
#[cold]
#[inline(never)]
fn drop_value(old: Value) {
    drop(old);
}

/// Stores `v` at `p`; the value there before is dropped after the store when it owns a
/// reference (inlined, so that a scalar is stored as its tag and payload).
///
/// # Safety
/// `p` points at a valid `Value` that no live reference borrows.
#[inline(always)]
unsafe fn write_typed(p: *mut Value, v: Value) {
    // SAFETY: the caller's contract. The old value is moved out before the store and dropped
    // once, after it; dropping values runs no mini code, so nothing sees the register between.
    unsafe {
        if (*p).is_heap() {
            let old = std::ptr::read(p);
            std::ptr::write(p, v);
            drop_value(old);
        } else {
            std::ptr::write(p, v);
        }
    }
}

/// Drops a returning call's callee (usually a function: its count is decremented inline).
#[inline(always)]
fn drop_callee(callee: Value) {
    match callee {
        Value::Func(f) => drop(f),
        other if other.is_heap() => drop_value(other),
        other => std::mem::forget(other),
    }
}

/// Stores a call's result over its callee, dropping the callee (usually a function) inline.
#[inline(always)]
fn replace_callee(slot: &mut Value, v: Value) {
    drop_callee(std::mem::replace(slot, v));
}

fn arg_count_error(expected: usize, got: usize) -> String {
    let s = if expected == 1 { "" } else { "s" };
    format!("expected {expected} argument{s}, got {got}")
}

#[cfg(test)]
mod tests {
    use super::for_count;

    /// The iterations after the first, counted by stepping as the old `ForLoop` did (an
    /// overflowing step ends the loop).
    fn stepped(start: i64, stop: i64, step: i64) -> Option<u64> {
        let inside = |i: i64| if step > 0 { i < stop } else { i > stop };
        if !inside(start) {
            return None;
        }
        let (mut i, mut n) = (start, 0u64);
        while let Some(next) = i.checked_add(step).filter(|&v| inside(v)) {
            i = next;
            n += 1;
        }
        Some(n)
    }

    #[test]
    fn for_count_agrees_with_stepping() {
        for start in -7..7 {
            for stop in -7..7 {
                for step in [-5, -3, -2, -1, 1, 2, 3, 5] {
                    assert_eq!(for_count(start, stop, step), stepped(start, stop, step), "{start} {stop} {step}");
                }
            }
        }
    }

    #[test]
    fn for_count_at_the_int_limits() {
        let (min, max) = (i64::MIN, i64::MAX);
        assert_eq!(for_count(min, max, 1), Some(u64::MAX - 1));
        assert_eq!(for_count(max, min, -1), Some(u64::MAX - 1));
        assert_eq!(for_count(min, max, max), Some(2));
        assert_eq!(for_count(max, min, min), Some(1));
        assert_eq!(for_count(0, max, max), Some(0));
        assert_eq!(for_count(max - 1, max, 1), Some(0));
        assert_eq!(for_count(5, 5, 1), None);
        assert_eq!(for_count(5, 5, -1), None);
        for (start, stop, step) in [(min, max, max), (max, min, min), (min, max, 1 << 62), (max, min, -(1 << 62))] {
            assert_eq!(for_count(start, stop, step), stepped(start, stop, step));
        }
    }
}
