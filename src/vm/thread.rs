//! mini threads: `spawn` starts an OS thread that runs a function under the GIL; `join` waits for
//! it with the GIL released and returns its result or raises its error.

use super::{Fail, Shared, Vm};
use crate::gc::{self, Header, Kind, Tracked};
use crate::gil::{Gil, GilBound, with_gil};
use crate::source::Diagnostic;
use crate::value::Value;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// The stack size of every thread that runs mini code (virtual; touched only as used).
pub const THREAD_STACK: usize = 256 << 20;

type Outcome = Result<Value, Diagnostic>;

/// What a thread and its joiners share: the outcome, once the thread is done.
pub struct ThreadState {
    outcome: Mutex<Option<GilBound<Outcome>>>,
    done: Condvar,
    joined: AtomicBool,
}

/// The value a program holds for a thread (one per `spawn`). It references the thread's result
/// once the thread is done, so it is registered with the cycle collector.
pub struct ThreadObj {
    state: Arc<ThreadState>,
    gc: Header,
}

impl Tracked for ThreadObj {
    const KIND: Kind = Kind::Thread;
    fn header(&self) -> &Header {
        &self.gc
    }
}

impl Drop for ThreadObj {
    fn drop(&mut self) {
        gc::untrack(&self.gc);
    }
}

impl ThreadObj {
    /// For the cycle collector: calls `f` with the thread's result, if it has returned one. The
    /// lock is taken even if another thread holds it: outcomes change only under the GIL, and
    /// threads without the GIL hold this lock only briefly (`wait_for_outcome`), so the two
    /// passes of a collection see the same result.
    pub fn visit(&self, gil: Gil, f: &mut dyn FnMut(&Value)) {
        if let Some(Ok(v)) = lock(&self.state.outcome).as_ref().map(|o| o.get(gil)) {
            f(v);
        }
    }

    /// For the cycle collector, on an unreachable handle: replaces the thread's result with
    /// nil and returns it. (An error outcome holds no values and is kept for the report at
    /// exit.)
    pub fn clear(&self, gil: Gil) -> Option<Value> {
        let mut guard = lock(&self.state.outcome);
        if !matches!(guard.as_ref().map(|o| o.get(gil)), Some(Ok(_))) {
            return None;
        }
        guard.replace(GilBound::new(Ok(Value::Nil), gil)).and_then(|o| o.into_inner(gil).ok())
    }
}

impl std::fmt::Debug for ThreadObj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<thread>")
    }
}

/// How many threads have been spawned; the n-th is named `n` (in `--stats`).
static SPAWNED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The state of the mini thread running on this OS thread (null on the main thread).
    static CURRENT: Cell<*const ThreadState> = const { Cell::new(std::ptr::null()) };
}

/// Every thread ever started, so that the program can wait for them at exit.
static THREADS: Mutex<Vec<(JoinHandle<()>, Arc<ThreadState>)>> = Mutex::new(Vec::new());

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
    let state =
        Arc::new(ThreadState { outcome: Mutex::new(None), done: Condvar::new(), joined: AtomicBool::new(false) });
    let payload = GilBound::new((f.clone(), rest.to_vec(), shared.clone()), gil);
    let theirs = state.clone();
    let number = SPAWNED.fetch_add(1, Ordering::Relaxed) + 1;
    let handle = std::thread::Builder::new()
        .name(number.to_string())
        .stack_size(THREAD_STACK)
        .spawn(move || thread_main(payload, theirs))
        .map_err(|e| format!("cannot start thread: {e}"))?;
    lock(&THREADS).push((handle, state.clone()));
    let obj = Rc::new(ThreadObj { state, gc: Header::new() });
    gc::track(&obj, gil);
    Ok(Value::Thread(obj))
}

fn thread_main(payload: GilBound<(Value, Vec<Value>, Rc<Shared>)>, state: Arc<ThreadState>) {
    CURRENT.with(|c| c.set(Arc::as_ptr(&state)));
    with_gil(|gil| {
        let (f, args, shared) = payload.into_inner(gil);
        let mut vm = Vm::new(gil, shared);
        let call = std::panic::AssertUnwindSafe(|| vm.call_value(f, args));
        let outcome = std::panic::catch_unwind(call).unwrap_or_else(|_| {
            Err(Diagnostic::new("internal error: the thread stopped unexpectedly", Default::default()))
        });
        vm.finish_thread();
        *lock(&state.outcome) = Some(GilBound::new(outcome, gil));
        state.done.notify_all();
        drop(vm);
        drop(state);
    });
}

/// `join(t)`: waits without the GIL, then returns the thread's result or raises its error.
pub fn join(t: &Value, gil: Gil) -> Result<Value, Fail> {
    let Value::Thread(obj) = t else {
        return Err(format!("join expects a thread, not {}", t.type_name()).into());
    };
    let state = obj.state.clone();
    if CURRENT.with(|c| c.get()) == Arc::as_ptr(&state) {
        return Err("thread cannot join itself".to_string().into());
    }
    let waiting = state.clone();
    let on_main = CURRENT.with(|c| c.get()).is_null();
    let finished = gil.allow_threads(move || wait_for_outcome(&waiting, None, on_main));
    if !finished {
        return Err("interrupted".to_string().into());
    }
    state.joined.store(true, Ordering::Relaxed);
    let guard = lock(&state.outcome);
    match guard.as_ref().map(|o| o.get(gil)) {
        Some(Ok(v)) => Ok(v.clone()),
        Some(Err(d)) => Err(Fail::Thread(Box::new(d.clone()))),
        None => unreachable!("joined thread has an outcome"),
    }
}

/// Waits (without the GIL) for every thread still running, then reports the errors of threads
/// that failed and were never joined. Returns how many such errors there were, or `Err` when
/// Ctrl-C interrupted the wait.
pub fn wait_all(gil: Gil, report: &dyn Fn(&Diagnostic)) -> Result<usize, Interrupted> {
    let mut states = Vec::new();
    loop {
        let batch: Vec<_> = std::mem::take(&mut *lock(&THREADS));
        if batch.is_empty() {
            break;
        }
        states.extend(batch.iter().map(|(_, state)| state.clone()));
        gil.allow_threads(move || wait_for_threads(batch))?;
    }
    let mut failures = 0;
    for state in states {
        if state.joined.load(Ordering::Relaxed) {
            continue;
        }
        if let Some(Err(d)) = lock(&state.outcome).as_ref().map(|o| o.get(gil)) {
            report(d);
            failures += 1;
        }
    }
    Ok(failures)
}

/// Ctrl-C ended a wait.
#[derive(Debug)]
pub struct Interrupted;

/// Waits (without the GIL) for each thread to end; `Err` when Ctrl-C interrupted the wait.
fn wait_for_threads(threads: Vec<(JoinHandle<()>, Arc<ThreadState>)>) -> Result<(), Interrupted> {
    for (handle, state) in threads {
        if !wait_for_outcome(&state, Some(&handle), true) {
            return Err(Interrupted);
        }
        let _ = handle.join();
    }
    Ok(())
}

/// Waits (without the GIL) until a thread has stored its outcome, or its OS thread has ended
/// without one; woken by the thread itself, and every 50 ms to look for Ctrl-C (only on the
/// main thread, `on_main`). Returns false when Ctrl-C interrupted the wait.
fn wait_for_outcome(state: &ThreadState, handle: Option<&JoinHandle<()>>, on_main: bool) -> bool {
    let mut outcome = lock(&state.outcome);
    while outcome.is_none() && !handle.is_some_and(|h| h.is_finished()) {
        if on_main && crate::gil::interrupted() {
            return false;
        }
        let tick = std::time::Duration::from_millis(50);
        outcome = state.done.wait_timeout(outcome, tick).unwrap_or_else(|e| e.into_inner()).0;
    }
    true
}
