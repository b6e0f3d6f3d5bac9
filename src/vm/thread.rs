//! mini threads: `spawn` starts an OS thread that runs a function under the GIL; `join` waits for
//! it with the GIL released and returns its result or raises its error.
//!
//! Waiting costs no CPU: a joiner registers a waiter in the thread's slot and parks through
//! `sync::wait::block` (which counts it as blocked, for deadlock detection) until the thread
//! stores its outcome and wakes it. The main thread's waits (`join`, and the wait for every
//! thread at exit) are also woken by [`wake_main`], which the Ctrl-C watcher calls, and by a
//! deadlock. A spawned thread counts as live (`wait::thread_started`) from `spawn` until it has
//! stored its outcome and woken its joiners.

use super::{Fail, Shared, Vm};
use crate::gc;
use crate::gil::{self, Gil, GilBound, GilSend, with_gil};
use crate::source::Diagnostic;
use crate::sync::wait::{self, Kind, Stop, Waiter, Where};
use crate::value::{self, ThreadObj, Value};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

pub use crate::parallel::THREAD_STACK;

type Outcome = Result<Value, Diagnostic>;

// SAFETY: a `Value` is `!Send` only because of its non-atomic reference counts and `GilCell`
// interiors, which every thread touches only while holding the GIL; it holds no token.
unsafe impl GilSend for Value {}
// SAFETY: `Shared` holds values (globals, constants) and the JIT, all touched only under the
// GIL; the `Rc` around it is a non-atomic count touched only under the GIL too.
unsafe impl GilSend for Rc<Shared> {}
// SAFETY: a `Diagnostic` is plain `Send` data.
unsafe impl GilSend for Diagnostic {}

/// What a thread and its joiners share: the outcome, and whether the thread has ended.
pub struct ThreadState {
    slot: Mutex<Slot>,
    joined: AtomicBool,
}

impl Drop for ThreadState {
    /// A thread's result may be the handle of a thread whose result is another handle, and so
    /// on: the result is freed inside the trashcan's depth count, or deferred to its trash
    /// stack when the drops in progress are too deep, as a container's contents are (gc.rs),
    /// so a chain of any length never overflows the stack.
    fn drop(&mut self) {
        let slot = self.slot.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(outcome) = slot.outcome.take() else { return };
        match gc::enter_drop() {
            Some(depth) => {
                drop(outcome);
                gc::leave_drop(depth);
            }
            None => {
                if let Some(Ok(value)) = outcome.into_inner_if_held() {
                    gc::trash().push(value);
                }
            }
        }
    }
}

impl value::ThreadState for ThreadState {
    /// The lock is taken even if another thread holds the GIL: outcomes change only under the
    /// GIL, and threads without it hold this lock only briefly, so the two passes of a
    /// collection see the same result.
    fn visit_result(&self, gil: Gil, f: &mut dyn FnMut(&Value)) {
        if let Some(Ok(v)) = lock(&self.slot).outcome.as_ref().map(|o| o.get(gil)) {
            f(v);
        }
    }

    fn clear_result(&self, gil: Gil) -> Option<Value> {
        let mut slot = lock(&self.slot);
        if !matches!(slot.outcome.as_ref().map(|o| o.get(gil)), Some(Ok(_))) {
            return None;
        }
        slot.outcome.replace(GilBound::new(Ok(Value::Nil), gil)).and_then(|o| o.into_inner(gil).ok())
    }
}

#[derive(Default)]
struct Slot {
    /// The function's result or error, stored under the GIL before the thread ends.
    outcome: Option<GilBound<Outcome>>,
    /// Set when the OS thread leaves `thread_main`, normally or by unwinding.
    ended: bool,
    /// The threads waiting in `join` (or at exit), woken when the outcome is stored.
    joiners: Vec<Arc<Waiter>>,
}

impl Slot {
    /// Whether joiners may go on.
    fn done(&self) -> bool {
        self.ended || self.outcome.is_some()
    }
}

/// Wakes the joiners taken from a slot.
fn wake_all(joiners: Vec<Arc<Waiter>>) {
    joiners.iter().for_each(|w| wait::wake(w));
}

/// How many threads have been spawned; the n-th is named `n` (in `--stats`).
static SPAWNED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The state of the mini thread running on this OS thread (null on the main thread).
    static CURRENT: Cell<*const ThreadState> = const { Cell::new(std::ptr::null()) };
}

/// Every thread ever started, so that the program can wait for them at exit.
/// `spawn` reaps the threads that have ended (`reap_ended`) when this list has doubled since the
/// last reaping: the OS thread is joined, and its entry dropped unless its error may still have
/// to be reported at exit. So a program that starts a million short threads keeps neither their
/// OS threads nor their results.
static THREADS: Mutex<Vec<Started>> = Mutex::new(Vec::new());

/// A started thread: its OS handle (until it is joined) and its state.
type Started = (Option<JoinHandle<()>>, Arc<ThreadState>);

/// The length of `THREADS` at which `spawn` reaps next.
static REAP_AT: AtomicUsize = AtomicUsize::new(64);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `spawn(f, args...)`
pub fn spawn(args: &[Value], shared: &Rc<Shared>, gil: Gil) -> Result<Value, Fail> {
    let Some((f, rest)) = args.split_first() else {
        return Err("expected at least 1 argument, got 0".to_string().into());
    };
    if !matches!(f, Value::Func(_) | Value::Builtin(_)) {
        return Err(format!("not callable: {}", f.type_name()).into());
    }
    let state = Arc::new(ThreadState { slot: Mutex::new(Slot::default()), joined: AtomicBool::new(false) });
    // the child's generator is seeded from one draw of this thread's (lang-spec/random.md)
    let seed = super::random::draw_seed();
    let payload = GilBound::new((f.clone(), rest.to_vec(), shared.clone()), gil);
    let theirs = state.clone();
    let number = SPAWNED.fetch_add(1, Ordering::Relaxed) + 1;
    wait::thread_started();
    let handle = std::thread::Builder::new()
        .name(number.to_string())
        .stack_size(THREAD_STACK)
        .spawn(move || thread_main(payload, theirs, seed))
        .map_err(|e| {
            wait::thread_ended();
            format!("cannot start thread: {e}")
        })?;
    let mut threads = lock(&THREADS);
    if threads.len() >= REAP_AT.load(Ordering::Relaxed) {
        reap_ended(&mut threads, gil);
        REAP_AT.store((2 * threads.len()).max(64), Ordering::Relaxed);
    }
    threads.push((Some(handle), state.clone()));
    drop(threads);
    Ok(Value::Thread(ThreadObj::new(state, gil)))
}

/// Joins the OS threads that have ended and drops their entries, except those of threads that
/// failed and were not joined (yet): their errors are reported at exit. Runs under the GIL, so
/// dropping an entry's outcome is safe; joining an ended thread does not wait for the GIL, which
/// a thread has released before it is marked ended.
fn reap_ended(threads: &mut Vec<Started>, gil: Gil) {
    threads.retain_mut(|(handle, state)| {
        let slot = lock(&state.slot);
        if !slot.ended {
            return true;
        }
        let failed = matches!(slot.outcome.as_ref().map(|o| o.get(gil)), Some(Err(_)));
        drop(slot);
        if let Some(h) = handle.take() {
            let _ = h.join();
        }
        failed && !state.joined.load(Ordering::Relaxed)
    });
}

/// Marks the thread ended and wakes its joiners when dropped, so that they wake even if the
/// thread unwinds before storing an outcome; then the thread no longer counts as live.
struct Ended(Arc<ThreadState>);

impl Drop for Ended {
    fn drop(&mut self) {
        let mut slot = lock(&self.0.slot);
        slot.ended = true;
        let joiners = std::mem::take(&mut slot.joiners);
        drop(slot);
        wake_all(joiners);
        wait::thread_ended();
        // (If this is the last reference, the outcome's `GilBound` leaks rather than be
        // dropped without the GIL; joiners and `THREADS` normally hold the state longer.)
    }
}

/// A spawned thread's body: seed its generator with `seed`, run the function under the GIL,
/// store the outcome, wake joiners.
fn thread_main(payload: GilBound<(Value, Vec<Value>, Rc<Shared>)>, state: Arc<ThreadState>, seed: u64) {
    CURRENT.with(|c| c.set(Arc::as_ptr(&state)));
    super::random::seed_thread(seed);
    wait::count_this_thread();
    let _ended = Ended(state.clone());
    with_gil(move |gil| {
        let (f, args, shared) = payload.into_inner(gil);
        let mut vm = Vm::new(gil, shared);
        let call = std::panic::AssertUnwindSafe(|| vm.call_value(f, args));
        let outcome = std::panic::catch_unwind(call).unwrap_or_else(|_| Err(stopped_unexpectedly()));
        vm.finish_thread();
        let mut slot = lock(&state.slot);
        slot.outcome = Some(GilBound::new(outcome, gil));
        let joiners = std::mem::take(&mut slot.joiners);
        drop(slot);
        // Joiners may go on as soon as the outcome is stored: waking them now overlaps their
        // wake-up with this thread's last steps (a spawn and join costs about a third less).
        wake_all(joiners);
        drop(vm);
        drop(state);
    });
}

fn stopped_unexpectedly() -> Diagnostic {
    Diagnostic::new("internal error: the thread stopped unexpectedly", Default::default())
}

/// `join(t)`, as `builtins::call` sees it: the VM calls [`join_at`] itself, with the place of
/// the call (see `Fail::Blocking`).
pub fn join(_t: &Value, _gil: Gil) -> Result<Value, Fail> {
    Err(Fail::Blocking)
}

/// `join(t)` called at `at`: waits without the GIL, then returns the thread's result or raises
/// its error.
pub fn join_at(t: &Value, at: Option<Where>, gil: Gil) -> Result<Value, Fail> {
    let Value::Thread(obj) = t else {
        // a list (or a string) here is most likely strings to join with the separator left out
        let hint =
            if matches!(t, Value::List(_) | Value::Str(_)) { " (to join strings: join(parts, sep))" } else { "" };
        return Err(format!("join expects a thread, not {}{hint}", t.type_name()).into());
    };
    let state: Arc<dyn std::any::Any + Send + Sync> = obj.state.clone();
    let Ok(state) = state.downcast::<ThreadState>() else {
        return Err("internal error: a thread handle without a thread".to_string().into());
    };
    let current = CURRENT.with(|c| c.get());
    if current == Arc::as_ptr(&state) {
        return Err("thread cannot join itself".to_string().into());
    }
    wait_until_ended(&state, "join", at, gil).map_err(|stop| Fail::Msg(stop.message()))?;
    state.joined.store(true, Ordering::Relaxed);
    let slot = lock(&state.slot);
    match slot.outcome.as_ref().map(|o| o.get(gil)) {
        Some(Ok(v)) => Ok(v.clone()),
        Some(Err(d)) => Err(Fail::Thread(Box::new(d.clone()))),
        None => Err(Fail::Thread(Box::new(stopped_unexpectedly()))),
    }
}

/// Waits (without the GIL) for every thread still running, including threads started while
/// waiting; then returns the errors of threads that failed and were never joined, in spawn
/// order, or how the wait was stopped (Ctrl-C, or a deadlock: the threads left all blocked).
pub fn wait_all(gil: Gil) -> Result<Vec<Diagnostic>, Stop> {
    let mut states = Vec::new();
    loop {
        let batch: Vec<_> = std::mem::take(&mut *lock(&THREADS));
        if batch.is_empty() {
            break;
        }
        for (handle, state) in batch {
            wait_until_ended(&state, "exit", None, gil)?;
            if let Some(h) = handle {
                // the thread may still be leaving `with_gil`: join it without the lock
                gil.allow_threads(move || {
                    let _ = h.join();
                });
            }
            states.push(state);
        }
    }
    let unjoined = states.iter().filter(|state| !state.joined.load(Ordering::Relaxed));
    let failures = unjoined.filter_map(|state| match lock(&state.slot).outcome.as_ref().map(|o| o.get(gil)) {
        Some(Err(d)) => Some(d.clone()),
        _ => None,
    });
    Ok(failures.collect())
}

/// Waits (without the GIL) until a thread has stored its outcome or ended, parked until it
/// wakes this waiter. The wait counts as blocked in `what` (`join`, or `exit` for the wait at
/// the end of the program) for deadlock detection; a wait of the main thread also ends on
/// Ctrl-C or a deadlock (`Err`).
fn wait_until_ended(state: &Arc<ThreadState>, what: &'static str, at: Option<Where>, gil: Gil) -> Result<(), Stop> {
    let waiter = {
        let mut slot = lock(&state.slot);
        if slot.done() {
            return Ok(());
        }
        let waiter = Waiter::new();
        slot.joiners.push(waiter.clone());
        waiter
    };
    match wait::block(&waiter, Kind::Join, what, at, gil) {
        Ok(()) => Ok(()),
        Err(stop) => {
            lock(&state.slot).joiners.retain(|w| !Arc::ptr_eq(w, &waiter));
            if waiter.is_woken() { Ok(()) } else { Err(stop) }
        }
    }
}

/// Wakes the main thread if it is waiting for a thread, so that it sees Ctrl-C. Called by the
/// Ctrl-C watcher; the interrupt bit is set first, so a wait that begins later sees it.
pub fn wake_main() {
    gil::interrupt();
    wait::wake_main();
}

/// How many spawned threads have not ended (`forked` needs none; called with the GIL held,
/// so none can start meanwhile). A spawned thread calling it counts itself.
pub fn running() -> usize {
    lock(&THREADS).iter().filter(|(_, state)| !lock(&state.slot).done()).count()
}
