//! `pmap(f, items, workers)`: calls `f` on every item on a pool of persistent worker threads
//! (the calling thread is one of the workers) and returns the results in input order.
//!
//! The pool: OS threads named `pool-1`, `pool-2`, ... started lazily, the first time a `pmap`
//! asks for more helpers than exist, and kept for the rest of the program; the pool grows to the
//! largest `workers - 1` ever asked (at most [`MAX_POOL_THREADS`]) and never shrinks. An idle
//! pool thread sleeps on a condition variable (`Pool::work`) until a `pmap` offers it a job;
//! nothing polls.
//!
//! A `pmap` call is a [`Job`]. Its caller offers the job to the pool (`offer`: it wakes at most
//! `workers - 1` idle pool threads), then works on it itself. Every worker, the caller included,
//! claims chunks of item indices from the job's atomic counter (`Job::claim`) until none are
//! left. The chunk policy is guided scheduling: a claim takes `remaining / (2 * workers)` items
//! (at least 1; a pool thread's claims are also capped by time, below), so the first chunks are
//! large (a claim, one compare-and-swap, is paid once per chunk, not per item) and the last ones
//! are single items (the workers finish together even when items take different times). The caller then waits (without the GIL, asleep on the
//! job's `Done`) until every claimed chunk is finished.
//!
//! Short calls are not worth a pool thread: interpreted calls take turns on the GIL anyway, and
//! two threads making short native calls hand the GIL to each other at every call (measured:
//! 2,000,000 calls of `x + 1` under `--jit` took 12 to 25 s with 2 workers, against 0.13 s with
//! 1). So a pool thread that arrives (its wake-up takes tens of microseconds) when the caller's
//! calls so far took less than `WORTH_HELPING` (20 us) each on average declines the job; and a
//! pool thread that helps claims chunks sized to about `HELPER_CHUNK` (1 ms) of its own timed
//! calls (the first chunk is one call) and stops after a chunk of calls under `WORTH_HELPING`.
//! After a decline the caller times its calls, and one of `LONG_CALL` (200 us) or more offers
//! the job again (`reoffer`) to the threads that declined, so a map whose late items are long
//! (`pmap(fib, range(40))`) is still shared. Without a decline the caller reads no clock.
//!
//! No deadlock: the caller alone can run every item, so a job never waits for a pool thread
//! that is not already running one of its chunks. A `pmap` nested in `f`, or called from
//! several threads at once, offers its job to the pool threads that are idle; when none is, it
//! runs on its calling thread only. A pool thread that joins a job late finds no chunk left
//! and goes back to sleep.
//!
//! Errors: an item whose call fails records its index and error (`Job::fail`); the lowest
//! failing index wins. Items after a failed one are skipped (a claim past the lowest failure
//! takes and skips all the rest), items before it all run, so the error raised is that of the
//! lowest failing index whatever the number of workers and the timing. Each worker makes its
//! calls on a `Vm` of its own for the job (`Vm::for_calls`), with the room for frames the
//! `pmap` caller had, so a call's stack and its recursion limit do not depend on the thread
//! that ran it; the error is raised at the
//! `pmap` call as `Fail::Call`, its frames on top of the caller's stack.
//!
//! Without the GIL this module touches only: the pool's state (its mutex), a job's atomic
//! counters, its `error` and `Done` mutexes, and the statistics of pool threads. A job's
//! function, items and results (`Calls`) are touched only under the GIL; the caller takes them
//! out of the job before it returns, so a job dropped by a pool thread without the GIL holds
//! no value (after Ctrl-C the main thread returns at once, and the values left may leak, as a
//! `GilBound` dropped without the GIL leaks; the program is ending).

use super::thread::THREAD_STACK;
use super::{Fail, Shared, ThreadReport, Vm};
use crate::gil::{self, Gil, GilBound, GilCell, GilSend, with_gil};
use crate::source::Diagnostic;
use crate::sync::wait::{self, Kind, Stop, Waiter};
use crate::value::{MAX_ARRAY_LEN, Value};
use std::cell::Cell;
use std::collections::VecDeque;
use std::ops::Range;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The most threads the pool starts (so `pmap` runs on at most this many plus its caller).
pub const MAX_POOL_THREADS: usize = 255;

/// The pool of worker threads, shared by every `pmap` of the program.
struct Pool {
    state: Mutex<PoolState>,
    /// Idle pool threads sleep here until a job is offered.
    work: Condvar,
}

struct PoolState {
    /// Pool threads started so far.
    threads: usize,
    /// Pool threads waiting for a job.
    idle: usize,
    /// Pool threads notified (or started) by an offer that have not yet looked at the offers;
    /// each is counted live in the deadlock registry in advance (see [`next_job`]).
    waking: usize,
    /// Jobs that want more helpers, oldest first.
    offers: VecDeque<Arc<Job>>,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState { threads: 0, idle: 0, waking: 0, offers: VecDeque::new() }),
    work: Condvar::new(),
};

/// The pool threads' statistics for `--stats`, published after each job (index: number - 1).
static REPORTS: Mutex<Vec<ThreadReport>> = Mutex::new(Vec::new());

thread_local! {
    /// The `pmap` calls of this thread whose items pool threads may be running now (see
    /// [`sharing_a_job`]).
    static SHARING: Cell<usize> = const { Cell::new(0) };
    /// Bytecodes executed by the `Vm`s `pmap` made on this thread, for its `--stats` line.
    static NESTED_EXECUTED: Cell<u64> = const { Cell::new(0) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a job's calls read and write, only under the GIL.
struct Calls {
    f: Value,
    items: Items,
    /// The draw of the caller's generator that seeds each item's (lang-spec/random.md).
    seed: u64,
    results: GilCell<Vec<Value>>,
    shared: Rc<Shared>,
}

/// A job's `Calls`, until its caller takes them out.
struct CallsSlot(GilCell<Option<Calls>>);

// SAFETY: `Calls` holds values, a `GilCell` and the program's `Rc<Shared>`, which every thread
// touches only under the GIL (a `GilBound` is opened only with the token); it holds no token.
unsafe impl GilSend for CallsSlot {}

/// The items, read when `pmap` starts: a list's or array's elements, or a range's start and step.
pub(super) enum Items {
    Values(Vec<Value>),
    Range { start: i64, step: i64 },
}

impl Items {
    pub(super) fn get(&self, i: usize) -> Value {
        match self {
            Items::Values(v) => v[i].clone(),
            // the true value is in the range, so wrapping arithmetic computes it exactly
            Items::Range { start, step } => Value::Int(start.wrapping_add((i as i64).wrapping_mul(*step))),
        }
    }
}

/// Whether every item of a job is finished, and the caller's waiter while it waits for that
/// (woken by the last item through the wait facility, `wait.rs`).
#[derive(Default)]
struct Done {
    state: Mutex<(bool, Option<Arc<Waiter>>)>,
}

/// One `pmap` call.
struct Job {
    calls: GilBound<CallsSlot>,
    n: usize,
    workers: usize,
    /// Frames each call may use (its caller's room).
    room: usize,
    /// The first item not yet claimed.
    next: AtomicUsize,
    /// The lowest failing index known (`usize::MAX`: none).
    failed: AtomicUsize,
    /// Items run or skipped, counted per chunk.
    finished: AtomicUsize,
    /// Pool threads that may still join.
    helpers: AtomicUsize,
    error: Mutex<Option<(usize, Diagnostic)>>,
    done: Arc<Done>,
    /// When the caller started, and how many calls it has made since: a pool thread that
    /// arrives when the calls are known to be short does not help ([`Job::worth_helping`]).
    started: std::sync::OnceLock<Instant>,
    caller_calls: AtomicUsize,
    /// Pool threads that declined to help; a long call of the caller offers the job again.
    declined: AtomicUsize,
    /// Set when the caller, timing its calls after a decline, made a call of [`LONG_CALL`].
    long_call: AtomicBool,
}

/// Who runs a chunk: the `pmap` caller (on the main thread or not), or a pool thread.
#[derive(Clone, Copy)]
enum Worker {
    Caller { on_main: bool },
    Pool,
}

/// The average call time below which a pool thread does not help (see `Job::worth_helping`).
const WORTH_HELPING: Duration = Duration::from_micros(20);

/// A call of the caller this long, after a pool thread declined, makes the job worth helping
/// after all (the items were short at first, as `pmap(fib, range(30))`'s are).
const LONG_CALL: Duration = Duration::from_micros(200);

/// About how long a pool thread's chunk of calls takes (it times each; see
/// `Job::help_in_timed_chunks`).
const HELPER_CHUNK: Duration = Duration::from_millis(1);

/// Ctrl-C stopped the main thread's `pmap`.
struct Interrupted;

/// `pmap(f, items)`, `pmap(f, items, workers)`, `pmap(f, items, workers, mode)`, called with
/// `room` frames left to its caller and whether the caller is the main thread. The mode
/// `"processes"` runs the calls in child processes (`procpool.rs`).
pub fn pmap(args: &[Value], room: usize, on_main: bool, shared: &Rc<Shared>, gil: Gil) -> Result<Value, Fail> {
    let (f, items, n, workers) = arguments(args, gil)?;
    let processes = processes_mode(args.get(3))?;
    if processes {
        super::procpool::check(on_main)?;
    }
    let seed = super::random::draw_seed();
    if n == 0 {
        return Ok(Value::list(Vec::new(), gil));
    }
    check_call(&f, room)?;
    if processes {
        let map = super::procpool::Map { f, items, n, seed };
        return super::procpool::pmap(map, workers, room, shared, gil);
    }
    let calls = Calls { f, items, seed, results: GilCell::new(nils(n)?), shared: shared.clone() };
    let job = Arc::new(Job::new(calls, n, workers.min(n), room, gil));
    let helpers = (job.workers - 1).min(MAX_POOL_THREADS);
    let _sharing = (helpers > 0).then(Sharing::start);
    if helpers > 0 {
        offer(&job, helpers);
    }
    let mut vm = Vm::for_calls(gil, shared.clone(), room, on_main);
    // the calls are timed from here (starting pool threads in `offer` is no call's time)
    let _ = job.started.set(Instant::now());
    let worked = job.work(&mut vm, Worker::Caller { on_main }, gil);
    NESTED_EXECUTED.with(|e| e.set(e.get() + vm.executed()));
    drop(vm);
    if helpers > 0 {
        withdraw(&job);
    }
    if worked.is_err() {
        return Err("interrupted".into());
    }
    job.wait(gil).map_err(|stop| stop.message())?;
    job.outcome(gil)
}

/// Counts a `pmap` call of this thread in [`SHARING`] while alive: from the offer to its pool
/// threads until every item is finished.
struct Sharing;

impl Sharing {
    fn start() -> Sharing {
        SHARING.with(|s| s.set(s.get() + 1));
        Sharing
    }
}

impl Drop for Sharing {
    fn drop(&mut self) {
        SHARING.with(|s| s.set(s.get() - 1));
    }
}

/// Whether this thread is making the calls of a `pmap` whose other items pool threads may be
/// running: a process forked now would lack those threads, and could inherit a lock one held.
pub(super) fn sharing_a_job() -> bool {
    SHARING.with(Cell::get) > 0
}

/// What a direct call `f(x)` at the `pmap` call would check first: a mini function's parameter
/// count, and room for its frame (a builtin takes no frame).
fn check_call(f: &Value, room: usize) -> Result<(), Fail> {
    if let Value::Func(c) = f {
        if c.proto.nparams != 1 {
            let s = if c.proto.nparams == 1 { "" } else { "s" };
            return Err(format!("expected {} argument{s}, got 1", c.proto.nparams).into());
        }
        if room == 0 {
            return Err("stack overflow".into());
        }
    }
    Ok(())
}

/// `n` nils, the results before the calls; an error when memory is refused.
fn nils(n: usize) -> Result<Vec<Value>, Fail> {
    let mut results = Vec::new();
    if results.try_reserve_exact(n).is_err() {
        return Err(format!("cannot allocate a list of {n} elements").into());
    }
    results.resize(n, Value::Nil);
    Ok(results)
}

/// Checks `pmap`'s arguments: the function, the items (read now), their count, the workers.
fn arguments(args: &[Value], gil: Gil) -> Result<(Value, Items, usize, usize), Fail> {
    if !(2..=4).contains(&args.len()) {
        return Err(format!("expected 2 to 4 arguments, got {}", args.len()).into());
    }
    let f = match &args[0] {
        f @ (Value::Func(_) | Value::Builtin(_)) => f.clone(),
        other => return Err(format!("pmap expects a function, not {}", other.type_name()).into()),
    };
    let items = match &args[1] {
        Value::List(l) => Items::Values(l.borrow(gil).clone()),
        Value::Array(a) => {
            super::ndarray::one_dim(a, "iterate over")?;
            Items::Values((0..a.len()).map(|i| a.get(i)).collect())
        }
        Value::Range(r) => {
            let n = r.exact_len();
            if n > MAX_ARRAY_LEN as i128 {
                return Err(format!("pmap expects at most {MAX_ARRAY_LEN} items, got {n}").into());
            }
            let items = Items::Range { start: r.start, step: r.step };
            return Ok((f, items, n as usize, workers(args.get(2))?));
        }
        other => return Err(format!("pmap expects a list, range or array, not {}", other.type_name()).into()),
    };
    let n = match &items {
        Items::Values(v) => v.len(),
        Items::Range { .. } => unreachable!("a range returned above"),
    };
    Ok((f, items, n, workers(args.get(2))?))
}

/// The number of workers: the argument, a positive int, or `cpu_count()` without one.
fn workers(arg: Option<&Value>) -> Result<usize, Fail> {
    match arg {
        None => Ok(cpu_count()),
        Some(Value::Int(w)) if *w >= 1 => Ok(usize::try_from(*w).unwrap_or(usize::MAX)),
        Some(Value::Int(w)) => Err(format!("pmap workers must be positive, not {w}").into()),
        Some(other) => Err(format!("pmap workers must be an int, not {}", other.type_name()).into()),
    }
}

/// Whether the mode argument asks for processes: `"threads"` (the default) or `"processes"`.
fn processes_mode(arg: Option<&Value>) -> Result<bool, Fail> {
    match arg {
        None => Ok(false),
        Some(Value::Str(s)) if &*s.text == "threads" => Ok(false),
        Some(Value::Str(s)) if &*s.text == "processes" => Ok(true),
        Some(Value::Str(s)) => {
            Err(format!("pmap mode must be \"threads\" or \"processes\", got \"{}\"", s.text).into())
        }
        Some(other) => Err(format!("pmap mode must be a string, not {}", other.type_name()).into()),
    }
}

/// `cpu_count()`, read once (the standard library reads cgroup files at every call, about
/// 40 us); the builtin and `pmap`'s default share it.
pub fn cpu_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The guided chunk: a share of the remaining items, so that claims are few and the last
/// chunks are small.
fn chunk_size(remaining: usize, workers: usize) -> usize {
    (remaining / (2 * workers)).max(1)
}

impl Job {
    fn new(calls: Calls, n: usize, workers: usize, room: usize, gil: Gil) -> Job {
        Job {
            calls: GilBound::new(CallsSlot(GilCell::new(Some(calls))), gil),
            n,
            workers,
            room,
            next: AtomicUsize::new(0),
            failed: AtomicUsize::new(usize::MAX),
            finished: AtomicUsize::new(0),
            helpers: AtomicUsize::new(0),
            error: Mutex::new(None),
            done: Arc::new(Done::default()),
            started: std::sync::OnceLock::new(),
            caller_calls: AtomicUsize::new(0),
            declined: AtomicUsize::new(0),
            long_call: AtomicBool::new(false),
        }
    }

    /// Once every call has finished: takes the calls out of the job (so that no value is left
    /// for a pool thread to drop) and returns the results, or the lowest failing index's error.
    fn outcome(&self, gil: Gil) -> Result<Value, Fail> {
        let calls = self.calls.get(gil).0.try_borrow_mut(gil).and_then(|mut c| c.take());
        let Some(mut calls) = calls else {
            return Err("internal error: pmap's results are gone".into());
        };
        if let Some((_, d)) = lock(&self.error).take() {
            return Err(Fail::Call(Box::new(d)));
        }
        Ok(Value::list(std::mem::take(calls.results.get_mut()), gil))
    }

    /// Claims the next chunk of items; past a known failure, all the rest (to be skipped).
    fn claim(&self) -> Option<Range<usize>> {
        self.claim_at_most(usize::MAX)
    }

    /// Claims the next chunk, of at most `most` items (past a known failure, all the rest).
    fn claim_at_most(&self, most: usize) -> Option<Range<usize>> {
        let mut start = self.next.load(Ordering::Relaxed);
        loop {
            if start >= self.n {
                return None;
            }
            let end = if start > self.failed.load(Ordering::Relaxed) {
                self.n
            } else {
                start + chunk_size(self.n - start, self.workers).min(most)
            };
            match self.next.compare_exchange_weak(start, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(start..end),
                Err(now) => start = now,
            }
        }
    }

    /// Claims and runs chunks until none is left (or, on the main thread, until Ctrl-C).
    fn work(self: &Arc<Self>, vm: &mut Vm, worker: Worker, gil: Gil) -> Result<(), Interrupted> {
        while let Some(range) = self.claim() {
            let claimed = Claimed { job: self, start: range.start, count: range.len() };
            let ran = self.run(range, vm, worker, gil);
            drop(claimed);
            ran?;
        }
        Ok(())
    }

    /// Runs the calls of one chunk, stopping at a known failure before its end.
    fn run(self: &Arc<Self>, range: Range<usize>, vm: &mut Vm, worker: Worker, gil: Gil) -> Result<(), Interrupted> {
        let on_main = matches!(worker, Worker::Caller { on_main: true });
        let is_caller = matches!(worker, Worker::Caller { .. });
        for i in range {
            if i > self.failed.load(Ordering::Relaxed) {
                break;
            }
            // the caller times its calls only after a pool thread declined to help
            let timed = (is_caller && self.declined.load(Ordering::Relaxed) > 0).then(Instant::now);
            if !self.call(i, vm, gil) {
                break;
            }
            if is_caller {
                self.caller_called(timed);
            }
            if gil.needs_attention() {
                safe_point(on_main, gil)?;
            }
        }
        Ok(())
    }

    /// Calls `f` on item `i` and stores its result or error; false when the calls are gone.
    fn call(&self, i: usize, vm: &mut Vm, gil: Gil) -> bool {
        let (f, item, seed) = {
            let slot = self.calls.get(gil).0.borrow(gil);
            let Some(calls) = slot.as_ref() else { return false };
            (calls.f.clone(), calls.items.get(i), calls.seed)
        };
        // item i draws from a generator of its own, whichever thread runs it
        let generator = super::random::ItemGenerator::enter(seed, i);
        let result = vm.call_value(f, vec![item]);
        drop(generator);
        match result {
            Ok(v) => {
                if let Some(calls) = self.calls.get(gil).0.borrow(gil).as_ref() {
                    calls.results.borrow_mut(gil)[i] = v;
                }
            }
            Err(d) => self.fail(i, d),
        }
        true
    }

    /// Counts a call the caller made; one timed at [`LONG_CALL`] or more offers the job again.
    fn caller_called(self: &Arc<Self>, timed: Option<Instant>) {
        // only the caller writes the count
        self.caller_calls.store(self.caller_calls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if timed.is_some_and(|t| t.elapsed() >= LONG_CALL) {
            self.long_call.store(true, Ordering::Relaxed);
            reoffer(self);
        }
    }

    /// Records the error of item `i`, keeping the lowest failing index's.
    fn fail(&self, i: usize, d: Diagnostic) {
        self.failed.fetch_min(i, Ordering::Relaxed);
        let mut error = lock(&self.error);
        if error.as_ref().is_none_or(|(j, _)| i < *j) {
            *error = Some((i, d));
        }
    }

    /// Counts `count` items finished; the last one wakes the caller.
    fn finish(&self, count: usize) {
        if self.finished.fetch_add(count, Ordering::AcqRel) + count == self.n {
            let mut done = lock(&self.done.state);
            done.0 = true;
            let waiter = done.1.take();
            drop(done);
            if let Some(w) = waiter {
                wait::wake(&w);
            }
        }
    }

    /// Waits without the GIL until every item is finished, blocked in `pmap` for deadlock
    /// detection (`wait.rs`): the pool threads that run its last chunks are live, so the wait
    /// is part of a deadlock only when they are blocked too. The main thread's wait also ends
    /// on Ctrl-C or a deadlock (`Err`).
    fn wait(&self, gil: Gil) -> Result<(), Stop> {
        let waiter = {
            let mut done = lock(&self.done.state);
            if done.0 {
                return Ok(());
            }
            let waiter = Waiter::new();
            done.1 = Some(waiter.clone());
            waiter
        };
        let stopped = wait::block(&waiter, Kind::Join, "pmap", None, gil);
        let mut done = lock(&self.done.state);
        done.1 = None;
        match stopped {
            Err(stop) if !done.0 => Err(stop),
            _ => Ok(()),
        }
    }

    /// Whether a pool thread arriving now should help: unless the caller's calls so far took
    /// less than [`WORTH_HELPING`] each on average (and none took [`LONG_CALL`]). Helping with calls that short gains nothing
    /// and costs much: interpreted calls take turns on the GIL anyway, and two threads making
    /// short native calls hand the GIL to each other at every call (each releases it around
    /// its native code).
    fn worth_helping(&self) -> bool {
        let calls = self.caller_calls.load(Ordering::Relaxed);
        calls == 0
            || self.long_call.load(Ordering::Relaxed)
            || self
                .started
                .get()
                .is_none_or(|t| t.elapsed() >= WORTH_HELPING.saturating_mul(calls.min(u32::MAX as usize) as u32))
    }

    /// A pool thread's part of the job: returns the bytecodes it executed.
    fn help(self: &Arc<Self>, gil: Gil) -> u64 {
        let shared = match self.calls.get(gil).0.borrow(gil).as_ref() {
            Some(calls) => calls.shared.clone(),
            None => return 0,
        };
        let mut vm = Vm::for_calls(gil, shared, self.room, false);
        self.help_in_timed_chunks(&mut vm, gil);
        vm.executed()
    }

    /// A pool thread's work on a job: chunks sized to about [`HELPER_CHUNK`] of calls (the first
    /// is one call), each timed; it stops helping after a chunk whose calls took less than
    /// [`WORTH_HELPING`] each, since calls that short are not worth a second thread, and a
    /// second thread making short native calls makes them slower (see `Job::worth_helping`).
    fn help_in_timed_chunks(self: &Arc<Self>, vm: &mut Vm, gil: Gil) {
        let mut most = 1;
        while let Some(range) = self.claim_at_most(most) {
            let count = range.len();
            let started = Instant::now();
            let claimed = Claimed { job: self, start: range.start, count };
            let _ = self.run(range, vm, Worker::Pool, gil);
            drop(claimed);
            let per_call = started.elapsed() / count.min(u32::MAX as usize) as u32;
            if per_call < WORTH_HELPING {
                self.declined.fetch_add(1, Ordering::Relaxed);
                return;
            }
            most = (HELPER_CHUNK.as_nanos() / per_call.as_nanos().max(1)).max(1) as usize;
        }
    }
}

/// A claimed chunk: counted as finished when dropped, even when a call panics (an internal
/// error, then reported as the chunk's error), so that the caller's wait always ends.
struct Claimed<'a> {
    job: &'a Job,
    start: usize,
    count: usize,
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let d = Diagnostic::new("internal error: a pmap call stopped unexpectedly", Default::default());
            self.job.fail(self.start, d);
        }
        self.job.finish(self.count);
    }
}

/// What a safe point of the interpreter does, between two items: raise Ctrl-C on the main
/// thread, run a requested collection, hand the GIL over when asked.
fn safe_point(on_main: bool, gil: Gil) -> Result<(), Interrupted> {
    if on_main && gil::interrupted() {
        return Err(Interrupted);
    }
    crate::gc::collect_requested(gil);
    if gil.drop_requested() {
        gil.yield_now();
    }
    Ok(())
}

/// In a child process just forked (`forked`, a process `pmap`): forgets the pool threads, which
/// exist only in the parent, so that a `pmap` in the child starts threads of its own. Offers
/// left by the parent's jobs are leaked, not dropped (their values belong to the parent's
/// program; the child's copy is never freed). A pool thread holds the pool's lock only for a
/// few instructions between jobs; should one have held it at the fork, the lock is never
/// released in the child, and this leaves the state alone rather than wait for ever here.
pub(super) fn forget_after_fork() {
    if let Ok(mut st) = POOL.state.try_lock() {
        std::mem::forget(std::mem::take(&mut st.offers));
        *st = PoolState { threads: 0, idle: 0, waking: 0, offers: VecDeque::new() };
    }
}

/// Offers a job to at most `helpers` pool threads, starting threads up to that many.
fn offer(job: &Arc<Job>, helpers: usize) {
    let mut st = lock(&POOL.state);
    let wake = helpers.min(st.idle.saturating_sub(st.waking));
    let mut started = 0;
    while st.threads < helpers {
        if start_thread(st.threads + 1).is_err() {
            break;
        }
        st.threads += 1;
        started += 1;
    }
    expect_pool_threads(&mut st, wake + started);
    if st.threads == 0 {
        return;
    }
    job.helpers.store(helpers, Ordering::Relaxed);
    st.offers.push_back(job.clone());
    drop(st);
    for _ in 0..wake {
        POOL.work.notify_one();
    }
}

/// Counts `n` pool threads about to look at the offers (notified or just started) as live in
/// the deadlock registry from now on, before they run: otherwise a caller blocked in a call (on
/// a queue that another item's call will fill) while its helper is still waking up would be the
/// only live thread, a false deadlock. [`next_job`] settles each count.
fn expect_pool_threads(st: &mut PoolState, n: usize) {
    st.waking += n;
    for _ in 0..n {
        wait::thread_started();
    }
}

/// Offers a job again to as many pool threads as declined it.
fn reoffer(job: &Arc<Job>) {
    let declined = job.declined.swap(0, Ordering::Relaxed);
    if declined == 0 {
        return;
    }
    let mut st = lock(&POOL.state);
    job.helpers.fetch_add(declined, Ordering::Relaxed);
    // (taken off the offers when its last helper place was taken)
    if !st.offers.iter().any(|j| Arc::ptr_eq(j, job)) {
        st.offers.push_back(job.clone());
    }
    let wake = declined.min(st.idle.saturating_sub(st.waking));
    expect_pool_threads(&mut st, wake);
    drop(st);
    for _ in 0..wake {
        POOL.work.notify_one();
    }
}

/// Takes a job off the offers once its caller has claimed its last chunk.
fn withdraw(job: &Arc<Job>) {
    let mut st = lock(&POOL.state);
    st.offers.retain(|j| !Arc::ptr_eq(j, job));
}

/// Starts pool thread `number` (named `pool-number`).
/// Its `--stats` line exists from then on (unless the thread has already published one).
fn start_thread(number: usize) -> std::io::Result<()> {
    let name = format!("pool-{number}");
    let builder = std::thread::Builder::new().name(name.clone()).stack_size(THREAD_STACK);
    builder.spawn(move || worker_main(number))?;
    let mut reports = lock(&REPORTS);
    if reports.len() < number {
        reports.resize(number, ThreadReport::default());
    }
    if reports[number - 1].name.is_empty() {
        reports[number - 1].name = name;
    }
    Ok(())
}

/// A pool thread: sleeps until a job is offered, helps with it under the GIL, and again.
fn worker_main(number: usize) {
    let mut executed = 0;
    let mut fresh = true;
    loop {
        // Deadlock detection (wait.rs): from `next_job` on, while it holds the job, this thread
        // is live (counted by `next_job`), so a call of its may be the one that wakes a blocked
        // thread, and its own waits count as blocked; while idle it is neither live nor blocked.
        let job = next_job(std::mem::take(&mut fresh));
        if job.next.load(Ordering::Relaxed) >= job.n {
            wait::thread_ended();
            continue;
        }
        if !job.worth_helping() {
            job.declined.fetch_add(1, Ordering::Relaxed);
            wait::thread_ended();
            continue;
        }
        wait::count_this_thread();
        let help = std::panic::AssertUnwindSafe(move || with_gil(move |gil| job.help(gil)));
        let helped = std::panic::catch_unwind(help);
        wait::thread_ended();
        executed += helped.unwrap_or(0) + take_nested_executed();
        publish(
            number,
            ThreadReport {
                name: format!("pool-{number}"),
                executed,
                gil: gil::thread_stats(),
                waits: wait::thread_waits(),
            },
        );
    }
}

/// Waits (without the GIL) for an offered job that wants a helper, and takes a helper's place;
/// the thread is then counted live in the deadlock registry (`worker_main` counts it out). A
/// thread that an offer notified or started (`woken`; a wake-up of the condition variable is
/// taken for one) settles one of the counts `expect_pool_threads` took in advance: it keeps it
/// when it takes a job, and gives it back when it finds none.
fn next_job(mut woken: bool) -> Arc<Job> {
    let mut st = lock(&POOL.state);
    st.idle += 1;
    loop {
        while let Some(front) = st.offers.front() {
            let slots = front.helpers.load(Ordering::Relaxed);
            if slots > 0 && front.next.load(Ordering::Relaxed) < front.n {
                front.helpers.store(slots - 1, Ordering::Relaxed);
                let job = front.clone();
                if slots == 1 {
                    st.offers.pop_front();
                }
                st.idle -= 1;
                if woken && st.waking > 0 {
                    st.waking -= 1;
                } else {
                    wait::thread_started();
                }
                return job;
            }
            st.offers.pop_front();
        }
        if woken && st.waking > 0 {
            st.waking -= 1;
            wait::thread_ended();
        }
        st = POOL.work.wait(st).unwrap_or_else(|e| e.into_inner());
        woken = true;
    }
}

/// Stores a pool thread's statistics.
fn publish(number: usize, report: ThreadReport) {
    let mut reports = lock(&REPORTS);
    if reports.len() < number {
        reports.resize(number, ThreadReport::default());
    }
    reports[number - 1] = report;
}

/// The pool threads' statistics (for `--stats`), in start order.
pub fn reports() -> Vec<ThreadReport> {
    lock(&REPORTS).iter().filter(|r| !r.name.is_empty()).cloned().collect()
}

/// Takes the bytecodes executed by `pmap`'s calls on this thread since the last take.
pub fn take_nested_executed() -> u64 {
    NESTED_EXECUTED.with(|e| e.replace(0))
}
