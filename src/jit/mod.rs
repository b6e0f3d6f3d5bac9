//! The JIT (`mini run --jit`): the tracer counts calls and loop back-edges per function and
//! records argument types; a hot call is specialized on those types (`infer`), lowered to
//! Cranelift IR (`lower`), compiled (`engine`), and from then on that call signature runs as
//! native code without the GIL (`runtime` holds what native code calls back into).
//!
//! Everything here runs on the thread holding the GIL, except the native code itself.

mod adapt;
mod alloc;
pub mod cache;
mod engine;
mod funcargs;
mod infer;
mod interval;
mod lower;
mod mirror;
pub(crate) mod parallel;
mod prekey;
mod report;
mod runtime;
mod types;
mod why;

use crate::bytecode::{self, Module, Proto};
use crate::gil::Gil;
use crate::source::{SourceMap, TraceFrame};
use crate::value::{Closure, Value};
use engine::{Engine, Entry};
use infer::{GlobalsView, Refusal, Session};
pub use report::jit_report;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use types::{MAX_PARAMS, Sig, Ty};

/// The default `--jit-threshold` (see lang-spec/jit.md for how it was chosen).
pub const DEFAULT_THRESHOLD: u64 = 1000;

/// The argument slots of a native call of at most a third this many arguments live in a small
/// buffer (an array takes three slots).
const SMALL_SLOTS: usize = 12;

/// The most specializations (including invalidated ones) one function may have.
pub const MAX_SPECS: usize = 8;

/// The native calls after which a [`trivial`] function's calls from the interpreter are
/// interpreted (its native code still runs where compiled callers inline it).
pub const TRIVIAL_NATIVE_CALLS: u64 = 64;

/// Whether a function returns after at most two instructions, none a call or a jump (such as
/// `fn inc(x) { return x + 1 }`): entering native code from the interpreter (matching the
/// specialization, unboxing, the call, boxing) costs more than interpreting it.
fn trivial(code: &[bytecode::Instr]) -> bool {
    for ins in code.iter().take(3) {
        match ins.facts().flow {
            bytecode::Flow::Return => return true,
            bytecode::Flow::Next
                if !matches!(ins, bytecode::Instr::Call { .. } | bytecode::Instr::CallBuiltin { .. }) => {}
            _ => return false,
        }
    }
    false
}

/// The command-line choices for the JIT.
#[derive(Clone, Debug)]
pub struct JitOptions {
    /// Calls after which a function without loops is compiled (0: at its first call).
    pub threshold: u64,
    /// Hold the GIL across native calls (numba's default) instead of releasing it.
    pub keep_gil: bool,
    /// Print the Cranelift IR of every compiled function to stderr.
    pub dump_ir: bool,
}

/// One compiled specialization of a function.
pub struct Spec {
    pub sig: Sig,
    pub ret: Ty,
    func_id: cranelift_module::FuncId,
    /// The entry trampoline; none for a specialization that was only inlined (never offered
    /// to the VM: see `Jit::install`).
    entry: Option<Entry>,
    /// False once a global it read (or a function it calls read) has been assigned.
    valid: Cell<bool>,
    /// Whether its native calls release the GIL, and the counts and timings behind it.
    gil: adapt::GilPolicy,
    /// The argument slots a native call needs (at least one, for the result).
    slots: usize,
    /// The function is [`trivial`]: after [`TRIVIAL_NATIVE_CALLS`] native calls, the
    /// interpreter runs its calls itself.
    trivial: bool,
    compile_time: Duration,
    /// Where its code came from (the cache of compiled code, cache.rs, or Cranelift).
    cached: engine::Origin,
    /// The globals it read, directly or through the functions it calls.
    deps: Vec<u16>,
    /// Arrays read from globals: kept alive as long as the code that points at them.
    _pins: Vec<Value>,
    /// Its native code may make arrays (itself or through a compiled callee): what is left of
    /// them on the thread's list is freed after each call (`alloc::free_all`).
    frees: bool,
    /// The inferred plan, so that later compilations can inline this function (its calls
    /// name specializations, not the plans of the session that made it).
    plan: OnceCell<Rc<infer::Plan>>,
}

impl Spec {
    /// The inferred body, for inlining.
    pub fn plan(&self) -> Option<&infer::Plan> {
        self.plan.get().map(|p| &**p)
    }
}

/// The JIT's per-function state, kept in the function's prototype's `JitSlot` (used under the
/// GIL only; the interpreter counts the loop back-edges in the slot itself).
#[derive(Default)]
pub struct ProtoJit {
    calls: Cell<u64>,
    interpreted_calls: Cell<u64>,
    has_loop: Cell<Option<bool>>,
    /// Only grows: a specialization stays here once made (see `spec_for`).
    specs: RefCell<Vec<Rc<Spec>>>,
    /// The specialization `spec_for` found last (null before), for its next call.
    last: Cell<*const Spec>,
    /// Specializations made only to be inlined into compiled callers (no code of their own,
    /// never offered to the VM: see `Jit::install`), for `--stats`.
    inlined: RefCell<Vec<Rc<Spec>>>,
    refusals: RefCell<Vec<(Sig, String)>>,
}

impl std::fmt::Debug for ProtoJit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProtoJit({} specs)", self.specs.borrow().len())
    }
}

impl ProtoJit {
    /// The JIT state of a function (created at its first use).
    #[inline]
    pub fn of(proto: &Proto) -> &ProtoJit {
        proto.jit.get_or_default()
    }

    /// The valid specialization for a signature.
    pub fn find_spec(&self, sig: Sig) -> Option<Rc<Spec>> {
        self.specs.borrow().iter().find(|s| s.sig == sig && s.valid.get()).cloned()
    }

    /// The valid specialization for these arguments' types.
    /// The last one found is tried first, without borrowing the list or touching a count.
    #[inline]
    fn spec_for(&self, args: &[Value], gil: Gil) -> Option<&Spec> {
        let last = self.last.get();
        // SAFETY: `last` is null or points into an `Rc<Spec>` of `specs`, which only grows
        // (a specialization is invalidated, never removed), so the `Spec` lives as long as
        // `self`; the reference is tied to `&self`.
        if let Some(spec) = unsafe { last.as_ref() }
            && spec.valid.get()
            && spec.sig.matches(args, gil)
        {
            return Some(spec);
        }
        let found = Rc::as_ptr(self.specs.borrow().iter().find(|s| s.valid.get() && s.sig.matches(args, gil))?);
        self.last.set(found);
        // SAFETY: as above: `found` points into an `Rc<Spec>` that `specs` keeps for as long as `self`.
        Some(unsafe { &*found })
    }

    /// Why this signature could not be compiled, if it could not.
    pub fn refusal(&self, sig: Sig) -> Option<String> {
        self.refusals.borrow().iter().find(|(s, _)| *s == sig).map(|(_, r)| r.clone())
    }

    /// Specializations made so far, including invalidated ones.
    pub fn spec_count(&self) -> usize {
        self.specs.borrow().len()
    }

    fn refuse(&self, sig: Sig, reason: String) {
        let mut refusals = self.refusals.borrow_mut();
        if !refusals.iter().any(|(s, _)| *s == sig) {
            refusals.push((sig, reason));
        }
    }

    fn has_loop(&self, proto: &Proto) -> bool {
        if let Some(b) = self.has_loop.get() {
            return b;
        }
        let b = bytecode::has_loop(&proto.code);
        self.has_loop.set(Some(b));
        b
    }
}

/// What happened to a call the JIT was offered.
pub enum Entered {
    /// The interpreter runs it.
    Interpret,
    /// Native code ran it and returned this.
    Returned(Value),
    /// Native code raised an error: its message and the native frames, outermost first.
    Failed(String, Vec<TraceFrame>),
}

/// The program's global variables, as the JIT reads them when it compiles (the interpreter
/// implements this for its globals, so that the JIT does not depend on the interpreter).
pub trait GlobalSource {
    /// The value global slot `g` holds now.
    fn value(&self, g: u16, gil: Gil) -> Value;
    /// The name of global slot `g`.
    fn name(&self, g: u16) -> &str;
}

/// The JIT state of one program.
pub struct Jit {
    pub options: JitOptions,
    engine: RefCell<Option<Engine>>,
    /// For each global read by compiled code: the specializations to invalidate when it changes.
    watchers: RefCell<HashMap<u16, Vec<Rc<Spec>>>>,
    watched: Box<[Cell<bool>]>,
    /// Every function called while the JIT was on, in first-call order (for `--stats`).
    seen: RefCell<Vec<Rc<Proto>>>,
    /// The program's source, for the line numbers in refusals (it grows at the prompt).
    source: RefCell<Arc<SourceMap>>,
    /// Set after a panic inside Cranelift: nothing more is compiled.
    broken: Cell<bool>,
    /// The cells through which compiled code reads the globals the program assigns.
    mirrors: mirror::Mirrors,
    /// The functions passed as arguments to compiled code, by their `Ty::Func` key: kept alive
    /// for the rest of the program, so that no other prototype ever gets the same address.
    functions: funcargs::Functions,
}

/// Where a function is defined, as the JIT's reports say it: `line N` in the main file, `FILE line
/// N` in a module.
fn where_defined(src: &SourceMap, proto: &Proto) -> String {
    let file = src.file(proto.span.start);
    let line = file.line_col(proto.span.start).0;
    if Arc::ptr_eq(file, src.main()) { format!("line {line}") } else { format!("{} line {line}", file.name) }
}

impl std::fmt::Debug for Jit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jit({:?})", self.options)
    }
}

/// The globals as a compile session sees them: their current values.
struct LiveGlobals<'a> {
    globals: &'a dyn GlobalSource,
    gil: Gil<'a>,
    mirrors: &'a mirror::Mirrors,
    functions: &'a funcargs::Functions,
}

impl GlobalsView for LiveGlobals<'_> {
    fn value(&self, g: u16) -> Value {
        self.globals.value(g, self.gil)
    }

    fn name(&self, g: u16) -> String {
        self.globals.name(g).to_string()
    }

    fn assigned(&self, g: u16) -> bool {
        self.mirrors.assigned(g as usize)
    }

    fn function(&self, addr: usize) -> Option<Rc<Proto>> {
        self.functions.get(addr)
    }

    fn key_function(&self, proto: &Rc<Proto>) -> Option<Ty> {
        Some(self.functions.key(proto, Vec::new()))
    }
}

/// The unboxed arguments and context of one native call, moved to the code that runs it
/// without the GIL.
struct NativeCall {
    entry: Entry,
    room: i64,
    slots: *mut u64,
}

// SAFETY: `slots` points into the calling VM's Rust stack frame (the argument slots), which
// outlives the call and which nothing else touches meanwhile; the entry point is immutable code.
// No interpreter object is reachable from a `NativeCall`.
unsafe impl Send for NativeCall {}

impl NativeCall {
    fn run(self) -> i64 {
        // SAFETY: `entry`'s trampoline was compiled for exactly the argument and result types
        // of the function at `entry.code` (the same plan types key both), which are the types
        // unboxed into `slots` (the signature matched), array pointers and lengths (or pointers to the dimensions,
        // which never change or move) come from arrays kept alive by the caller's registers
        // (arguments) or by the specialization (globals), or from arrays the native code made
        // itself (freed only once no native register holds them, see alloc.rs), and native
        // code only reads and writes inside them after bounds checks.
        unsafe { (self.entry.trampoline)(self.entry.code, self.room, self.slots) }
    }

    /// Runs the call, timing it when `time` is set.
    #[inline]
    fn run_timed(self, time: bool) -> (i64, Option<Duration>) {
        if !time {
            return (self.run(), None);
        }
        let started = Instant::now();
        let status = self.run();
        (status, Some(started.elapsed()))
    }
}

impl Jit {
    /// The JIT of the program made of `modules` (the main file first), with `globals` global
    /// slots.
    pub fn new(options: JitOptions, modules: &[Rc<Module>], globals: usize, source: Arc<SourceMap>) -> Jit {
        let mains: Vec<&Proto> = modules.iter().map(|m| &*m.main).collect();
        Jit::with_mirrors(options, mirror::Mirrors::new(&mains, globals), globals, source)
    }

    /// The JIT of the interactive prompt, with `globals` global slots: every global is read
    /// through its mirror cell (see `Mirrors::all_assigned`), since a later input may assign any.
    pub fn for_prompt(options: JitOptions, globals: usize, source: Arc<SourceMap>) -> Jit {
        Jit::with_mirrors(options, mirror::Mirrors::all_assigned(globals), globals, source)
    }

    fn with_mirrors(options: JitOptions, mirrors: mirror::Mirrors, globals: usize, source: Arc<SourceMap>) -> Jit {
        Jit {
            mirrors,
            source: RefCell::new(source),
            broken: Cell::new(false),
            options,
            engine: RefCell::new(None),
            watchers: RefCell::new(HashMap::new()),
            watched: (0..globals).map(|_| Cell::new(false)).collect(),
            seen: RefCell::new(Vec::new()),
            functions: funcargs::Functions::default(),
        }
    }

    /// Makes `source` the program's text, for the lines of later refusals (the prompt calls
    /// this before each input runs, with every input so far).
    pub fn set_source(&self, source: Arc<SourceMap>) {
        *self.source.borrow_mut() = source;
    }

    /// Offers a call of `callee` with `args` to the JIT: it runs natively when a specialization
    /// exists or can be made now. `room` is how many frames the callee may still push; `globals`
    /// gives the globals compiled code reads.
    pub fn enter(&self, callee: &Closure, args: &[Value], room: i64, globals: &dyn GlobalSource, gil: Gil) -> Entered {
        let proto = &callee.proto;
        let pj = ProtoJit::of(proto);
        let calls = pj.calls.get() + 1;
        pj.calls.set(calls);
        if calls == 1 {
            self.seen.borrow_mut().push(proto.clone());
        }
        if let Some(spec) = pj.spec_for(args, gil) {
            let entered = self.call_native(spec, args, room, gil);
            if spec.trivial && spec.gil.calls() >= TRIVIAL_NATIVE_CALLS {
                proto.jit.set_interpreter_first();
            }
            return entered;
        }
        self.enter_cold(callee, args, room, globals, gil)
    }

    /// The rest of `enter` when no specialization matches, kept out of line so that the call
    /// of an existing specialization stays small (its frame would otherwise hold a whole
    /// compile session).
    #[cold]
    #[inline(never)]
    fn enter_cold(&self, callee: &Closure, args: &[Value], room: i64, globals: &dyn GlobalSource, gil: Gil) -> Entered {
        let proto = &callee.proto;
        let pj = ProtoJit::of(proto);
        // hot first: a call before the threshold (fib's first thousand) does no more (a `Sig`
        // is 392 bytes to fill and copy)
        let hot = pj.calls.get() > self.options.threshold || pj.has_loop(proto);
        if !hot {
            return self.interpret(pj);
        }
        let Some(sig) = Sig::of(args) else {
            return self.interpret(pj);
        };
        // function arguments by identity (after the hotness test: a key keeps its function alive)
        let sig = self.functions.key_args(sig, args, gil);
        if pj.refusal(sig).is_some() {
            return self.interpret(pj);
        }
        if pj.spec_count() >= MAX_SPECS {
            pj.refuse(sig, format!("{} specializations already made (the cap)", MAX_SPECS));
            return self.interpret(pj);
        }
        let view = LiveGlobals { globals, gil, mirrors: &self.mirrors, functions: &self.functions };
        match self.compile(proto, sig, &view) {
            Some(spec) => self.call_native(&spec, args, room, gil),
            None => self.interpret(pj),
        }
    }

    fn interpret(&self, pj: &ProtoJit) -> Entered {
        pj.interpreted_calls.set(pj.interpreted_calls.get() + 1);
        Entered::Interpret
    }

    /// Infers and compiles `proto` for `sig` (and the functions it reaches); records a refusal
    /// on failure.
    fn compile(&self, proto: &Rc<Proto>, sig: Sig, view: &LiveGlobals) -> Option<Rc<Spec>> {
        if self.broken.get() {
            ProtoJit::of(proto).refuse(sig, "the JIT is off after an internal error".into());
            return None;
        }
        // A bug in inference or in Cranelift must not take the program down: the function runs
        // interpreted, and after a panic in Cranelift (whose module may then be inconsistent) the
        // JIT compiles nothing more.
        let mut session = Session::new(view, MAX_SPECS);
        let inferred = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session.infer(proto.clone(), sig)));
        match inferred {
            Ok(Ok(())) => {}
            Ok(Err(refusal)) => {
                self.record_refusal(&session, refusal);
                return None;
            }
            Err(_) => {
                ProtoJit::of(proto).refuse(sig, "internal error in type inference".into());
                return None;
            }
        }
        let mut engine = self.engine.borrow_mut();
        if engine.is_none() {
            match Engine::new() {
                Ok(e) => *engine = Some(e),
                Err(e) => {
                    ProtoJit::of(proto).refuse(sig, format!("the JIT is unavailable: {e}"));
                    return None;
                }
            }
        }
        let engine = engine.as_mut().expect("created above");
        let dump_ir = self.options.dump_ir;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.compile(&session.plans, &self.mirrors, dump_ir)
        }));
        let compiled = match result {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                if std::env::var_os("MINI_JIT_VERIFY").is_some() {
                    // the test suites set this: an internal error must show up as a difference
                    to_stderr(&format!("mini: internal JIT error: {e}\n"));
                }
                ProtoJit::of(proto).refuse(sig, format!("internal compiler error: {e}"));
                return None;
            }
            Err(_) => {
                self.broken.set(true);
                ProtoJit::of(proto).refuse(sig, "internal compiler error (the JIT is off from now on)".into());
                return None;
            }
        };
        let (spec, deferred) = self.install(&session, compiled);
        for (id, plan) in deferred {
            engine.defer(id, plan);
        }
        Some(spec)
    }

    /// Makes the session's compiled plans callable: one specialization each, watching the
    /// globals any of them read (directly or through earlier specializations they call).
    /// A plan that was only inlined (no result) gets a specialization too, so that the plans
    /// kept for inlining can name it, but no entry: it is not offered to the VM, and its
    /// undefined function and plan are returned for `Engine::defer`.
    fn install(
        &self,
        session: &Session,
        compiled: Vec<engine::Compiled>,
    ) -> (Rc<Spec>, Vec<(cranelift_module::FuncId, Rc<infer::Plan>)>) {
        let mut deps = BTreeSet::new();
        let mut pins = Vec::new();
        let mut frees = false;
        for plan in &session.plans {
            frees |= lower::allocates(plan);
            frees |= plan.calls.values().any(|t| matches!(t, infer::Target::Spec(s) if s.frees));
            for (g, v) in &plan.globals {
                deps.insert(*g);
                if let Value::Array(_) = v {
                    pins.push(v.clone());
                }
            }
            for target in plan.calls.values() {
                if let infer::Target::Spec(spec) = target {
                    deps.extend(spec.deps.iter().copied());
                }
            }
        }
        let mut specs: Vec<Rc<Spec>> = Vec::with_capacity(session.plans.len());
        for (plan, c) in session.plans.iter().zip(compiled) {
            if let Some(ir) = &c.ir {
                let (name, ms) = (plan.sig.display(&plan.proto.name), c.time.as_secs_f64() * 1e3);
                to_stderr(&format!("; {name} ({ms:.3} ms)\n{ir}\n"));
            }
            let spec = Rc::new(Spec {
                sig: plan.sig,
                ret: plan.ret_ty(),
                func_id: c.func_id,
                entry: c.entry,
                valid: Cell::new(true),
                gil: adapt::GilPolicy::default(),
                slots: plan.sig.tys().iter().map(|t| lower::param_types(*t).len()).sum::<usize>().max(1),
                trivial: trivial(&plan.proto.code),
                compile_time: c.time,
                cached: c.cached,
                deps: deps.iter().copied().collect(),
                _pins: pins.clone(),
                frees,
                plan: OnceCell::new(),
            });
            let pj = ProtoJit::of(&plan.proto);
            if spec.entry.is_some() {
                pj.specs.borrow_mut().push(spec.clone());
            } else {
                pj.inlined.borrow_mut().push(spec.clone());
            }
            let mut watchers = self.watchers.borrow_mut();
            for g in &deps {
                watchers.entry(*g).or_default().push(spec.clone());
                self.watched[*g as usize].set(true);
            }
            specs.push(spec);
        }
        let mut deferred = Vec::new();
        for (plan, spec) in session.plans.iter().zip(&specs) {
            let mut kept = plan.clone();
            for target in kept.calls.values_mut() {
                if let infer::Target::Plan(j) = target {
                    *target = infer::Target::Spec(specs[*j].clone());
                }
            }
            let kept = Rc::new(kept);
            if spec.entry.is_none() {
                deferred.push((spec.func_id, kept.clone()));
            }
            let _ = spec.plan.set(kept);
        }
        (specs.swap_remove(0), deferred)
    }

    /// Records why a session failed: on the function that failed, and on the function that was
    /// being compiled (naming the call that reached the failure).
    fn record_refusal(&self, session: &Session, refusal: Refusal) {
        let plan = &session.plans[refusal.plan];
        let reason = match refusal.pc {
            Some(pc) => why::explain(&self.source.borrow(), &plan.proto, pc, &refusal.reason),
            None => refusal.reason,
        };
        ProtoJit::of(&plan.proto).refuse(plan.sig, reason.clone());
        if refusal.plan == 0 {
            return;
        }
        let mut at = refusal.plan;
        while let Some((caller, pc)) = session.plans[at].caller {
            if caller == 0 {
                let root = &session.plans[0];
                let callee = &session.plans[at];
                let why = format!(
                    "{}: calls {}, which cannot be compiled",
                    why::at(&self.source.borrow(), &root.proto, pc),
                    callee.sig.display(&callee.proto.name)
                );
                ProtoJit::of(&root.proto).refuse(root.sig, why);
                return;
            }
            at = caller;
        }
    }

    /// Runs a specialization natively on unboxed `args`. Whether the GIL is released around the
    /// call is the specialization's adaptive choice (`adapt`), or never with `--keep-gil`; only
    /// the native code itself is timed, not the wait to take the GIL back.
    #[inline]
    fn call_native(&self, spec: &Spec, args: &[Value], room: i64, gil: Gil) -> Entered {
        // a small buffer for the common few arguments (zeroing the largest one costs as much as
        // a tiny call)
        if args.len() <= SMALL_SLOTS / 3 && spec.slots <= SMALL_SLOTS {
            let mut slots = [0u64; SMALL_SLOTS];
            self.call_with_slots(spec, args, &mut slots, room, gil)
        } else if spec.slots > 2 * MAX_PARAMS {
            // the captured values of functions passed as arguments (see `funcargs`)
            let mut slots = vec![0u64; spec.slots];
            self.call_with_slots(spec, args, &mut slots, room, gil)
        } else {
            let mut slots = [0u64; 3 * MAX_PARAMS];
            self.call_with_slots(spec, args, &mut slots, room, gil)
        }
    }

    /// `call_native` with a slot buffer of at least three slots per argument (and one).
    #[inline]
    fn call_with_slots(&self, spec: &Spec, args: &[Value], slots: &mut [u64], room: i64, gil: Gil) -> Entered {
        let mut k = 0;
        for a in args {
            match a {
                Value::Int(i) => slots[k] = *i as u64,
                Value::Float(f) => slots[k] = f.to_bits(),
                Value::Bool(b) => slots[k] = *b as u64,
                Value::Array(arr) if !arr.dims.is_empty() => {
                    slots[k] = arr.data.as_ptr() as u64;
                    k += 1;
                    // an array of several dimensions: a pointer to its dimensions
                    // (`engine::define_entry` loads them), which live as long as the array,
                    // then its own word
                    slots[k] = arr.dims.as_ptr() as u64;
                    k += 1;
                    slots[k] = alloc::interpreter_own(arr);
                }
                Value::Array(arr) => {
                    slots[k] = arr.data.as_ptr() as u64;
                    slots[k + 1] = arr.len() as u64;
                    slots[k + 2] = alloc::interpreter_own(arr);
                    k += 2;
                }
                Value::Func(c) if !c.upvals.is_empty() => {
                    funcargs::unbox_captures(c, slots, &mut k, gil);
                    continue;
                }
                _ => continue,
            }
            k += 1;
        }
        let plan = spec.gil.next_call(self.options.keep_gil);
        let Some(entry) = spec.entry else {
            return Entered::Interpret;
        };
        let call = NativeCall { entry, room, slots: slots.as_mut_ptr() };
        let (status, took) =
            if plan.release { gil.allow_threads(move || call.run_timed(plan.time)) } else { call.run_timed(plan.time) };
        if let Some(took) = took {
            spec.gil.record(took);
        }
        if status != runtime::status::OK {
            if status == lower::FLOAT_RESULT && spec.ret == Ty::Num {
                // an int or float that is a float this time
                return Entered::Returned(Value::Float(f64::from_bits(slots[0])));
            }
            let (message, frames) = runtime::failure();
            // the context is clean before every call: empty at first, and emptied here after
            // each failure (only a failing call records into it)
            runtime::begin();
            // the arrays the failed call's frames made (no native code refers to them now)
            alloc::free_all();
            return Entered::Failed(message, frames);
        }
        let bits = slots[0];
        let value = match spec.ret {
            Ty::Int => Value::Int(bits as i64),
            Ty::Float => Value::Float(f64::from_bits(bits)),
            Ty::Bool => Value::Bool(bits != 0),
            // an int or float that is an int this time (a float returns `FLOAT_RESULT`)
            Ty::Num => Value::Int(bits as i64),
            Ty::FloatArray | Ty::IntArray | Ty::FloatArrayN(_) | Ty::IntArrayN(_) => alloc::take_result(bits),
            _ => Value::Nil,
        };
        if spec.frees {
            // nothing is left unless a count was lost on the way, which then costs memory only
            // until here
            alloc::free_all();
        }
        Entered::Returned(value)
    }

    /// Global `g` was assigned `value`: specializations that read it are invalid from their next
    /// call, unless compiled code reads it from its mirror cell and can go on doing so (a global
    /// the program assigns, which keeps its type, and its identity if an array or function).
    #[inline]
    pub fn global_written(&self, g: usize, value: &Value) {
        if self.mirrors.assigned(g) && !self.mirrors.write(g, value) {
            return;
        }
        if !self.watched[g].get() {
            return;
        }
        self.watched[g].set(false);
        if let Some(specs) = self.watchers.borrow_mut().remove(&(g as u16)) {
            for s in specs {
                s.valid.set(false);
            }
        }
    }

    /// The `--stats` report: per function, its specializations and refusals.
    pub fn report(&self, src: &SourceMap) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "jit: per function (--jit-threshold {})", self.options.threshold);
        for proto in self.seen.borrow().iter() {
            let pj = ProtoJit::of(proto);
            let _ = writeln!(
                out,
                "  {} ({}): {} calls, {} interpreted, {} loop back-edges interpreted",
                proto.name,
                where_defined(src, proto),
                pj.calls.get(),
                pj.interpreted_calls.get(),
                proto.jit.backedges()
            );
            for s in pj.specs.borrow().iter() {
                let _ = writeln!(
                    out,
                    "    compiled {} -> {} in {:.3} ms{}, {} native calls {}{}",
                    s.sig.display(&proto.name),
                    s.ret.name(),
                    s.compile_time.as_secs_f64() * 1e3,
                    match s.cached {
                        engine::Origin::Compiled => "",
                        engine::Origin::Cache => " (cached)",
                        engine::Origin::CacheBeforeLowering => " (cached, not lowered)",
                    },
                    s.gil.calls(),
                    s.gil.summary(),
                    if s.valid.get() { "" } else { " (invalidated: a global it read was assigned)" }
                );
            }
            for s in pj.inlined.borrow().iter() {
                let _ = writeln!(
                    out,
                    "    compiled {} -> {} in 0.000 ms, 0 native calls (inlined into its compiled callers, no code of \
                     its own){}",
                    s.sig.display(&proto.name),
                    s.ret.name(),
                    if s.valid.get() { "" } else { " (invalidated: a global it read was assigned)" }
                );
            }
            for (sig, reason) in pj.refusals.borrow().iter() {
                let _ = writeln!(out, "    cannot compile {}: {}", sig.display(&proto.name), reason);
            }
            if proto.jit.interpreter_first() {
                let _ = writeln!(
                    out,
                    "    interpreted after {TRIVIAL_NATIVE_CALLS} native calls: too short to gain from native code \
                     (later calls are not counted)"
                );
            }
        }
        out
    }
}

/// Writes to stderr, ignoring a failure (`eprint!` panics when stderr is closed).
fn to_stderr(text: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
}
