//! The one way a mini thread blocks: a [`Waiter`] registered in some object's wait list, a
//! park until a waker sets its flag, and a central registry that counts live and blocked threads
//! so that a deadlock is reported instead of hanging.
//!
//! What it may touch without the GIL: the registry (a `Mutex`), each waiter's `woken` flag and
//! its thread handle, and the GIL's interrupt bit. Everything else a wait involves (the wait
//! lists of locks, queues, barriers) lives in interpreter objects, under the GIL.
//!
//! The protocol, used by every blocking builtin and by `join`:
//!
//! 1. holding the GIL (or, for `join`, the thread slot's mutex), the waiter checks that it must
//!    wait, makes a [`Waiter`] and pushes it on the object's wait list;
//! 2. [`block`] records the thread as blocked (kind and source location) in the registry; if
//!    then every live thread is blocked, that is a deadlock; otherwise it releases the GIL and
//!    parks until its waiter is woken;
//! 3. a waker takes the waiter off the list and calls [`wake`], which sets the flag *and* removes
//!    the blocked record under the registry's mutex before it unparks the thread, so a thread
//!    that can go on never counts as blocked, even before it runs again.
//!
//! A thread is live from `spawn` (before its OS thread starts) until it has stored its outcome
//! and woken its joiners ([`thread_started`], [`thread_ended`]); the main thread is live from the
//! start until the process ends. A live thread that is not blocked (running, waiting for the GIL,
//! sleeping, running native code) can proceed, so the check `blocked == live` is exact: it runs
//! when a thread blocks and when a thread ends, the only two events that can make it true.
//!
//! Only the main thread reports a deadlock: the thread that finds one (which may be the main
//! thread itself) records the report and unparks the main thread, whose wait then fails with the
//! error `deadlock: all threads are blocked`. The other threads stay parked; the process ends.
//! Ctrl-C wakes the main thread's waits too ([`wake_main`]).

use crate::gil::{self, Gil};
use crate::source::{SourceMap, Span};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// A thread waiting on one object: its handle (to unpark it) and whether it has been woken.
#[derive(Debug)]
pub struct Waiter {
    thread: Thread,
    woken: AtomicBool,
}

impl Waiter {
    /// A waiter for the current thread.
    pub fn new() -> Arc<Waiter> {
        Arc::new(Waiter { thread: std::thread::current(), woken: AtomicBool::new(false) })
    }

    /// The waiting thread (a lock hands itself to it by this id).
    pub fn thread_id(&self) -> std::thread::ThreadId {
        self.thread.id()
    }

    /// Whether a waker has made this wait able to proceed.
    pub fn is_woken(&self) -> bool {
        self.woken.load(Ordering::Acquire)
    }

    fn key(&self) -> usize {
        self as *const Waiter as usize
    }
}

/// Where in the program something happened: a file and a span, printed `file:line:col`.
#[derive(Clone, Debug)]
pub struct Where {
    pub file: Arc<SourceMap>,
    pub span: Span,
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file.location(self.span))
    }
}

/// The kinds of wait that `--stats` times, one column each (the GIL's own wait is in `gil.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Join,
    Lock,
    Queue,
    Barrier,
    Sleep,
}

/// Time spent blocked per [`Kind`], in that order.
pub type Waits = [Duration; 5];

thread_local! {
    static WAITS: RefCell<Waits> = const { RefCell::new([Duration::ZERO; 5]) };
    /// Whether this thread is counted among the live threads (set by [`count_this_thread`]; the
    /// main thread always is). The waits of a thread that is not counted never count as
    /// blocked, so they cannot make the check `blocked == live` true.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as one of the live threads that [`thread_started`] counted (a
/// spawned thread calls it first thing; a pool worker too, if it was counted).
pub fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

/// This thread's blocked time so far, per kind.
pub fn thread_waits() -> Waits {
    WAITS.with(|w| *w.borrow())
}

/// Adds `d` to this thread's blocked time of `kind`.
pub fn add_wait(kind: Kind, d: Duration) {
    WAITS.with(|w| w.borrow_mut()[kind as usize] += d);
}

/// A blocked thread, as the deadlock report names it.
struct Blocked {
    /// The thread's name (`main`, or its number).
    name: String,
    /// The builtin it waits in (`get`, `join`, ...), or `exit` for the main thread's wait for
    /// the other threads at the end of the program.
    what: &'static str,
    at: Option<Where>,
}

struct Registry {
    /// Threads that are live: the main thread, and spawned threads that have not ended.
    live: usize,
    /// The blocked threads, by the address of their waiter.
    blocked: HashMap<usize, Blocked>,
    /// The report of a deadlock found, for the main thread to raise.
    deadlock: Option<Deadlock>,
}

/// A deadlock: the error message, and where the blocked threads other than the main one wait
/// (the first is where the report points when the main thread has no location of its own).
#[derive(Clone, Debug)]
pub struct Deadlock {
    pub message: String,
    pub first_other: Option<Where>,
}

static REGISTRY: LazyLock<Mutex<Registry>> =
    LazyLock::new(|| Mutex::new(Registry { live: 1, blocked: HashMap::new(), deadlock: None }));

/// Set once a deadlock has been found (read by the main thread's park loop without the mutex).
static DEADLOCKED: AtomicBool = AtomicBool::new(false);

/// The mini main thread, recorded by its first wait, so that Ctrl-C and a deadlock can wake it.
static MAIN: OnceLock<Thread> = OnceLock::new();

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a deadlock has been found (the program is ending; `try` does not handle it).
pub fn deadlocked() -> bool {
    DEADLOCKED.load(Ordering::Relaxed)
}

/// Whether the current thread is mini's main thread (the one that raises Ctrl-C and deadlocks).
pub fn on_main() -> bool {
    std::thread::current().name() == Some("main")
}

/// Counts a new live thread; called by `spawn` before the OS thread starts (and by any pool
/// that runs mini code on its own threads, for as long as a worker may block). The thread then
/// calls [`count_this_thread`].
pub fn thread_started() {
    registry().live += 1;
}

/// Counts a thread that has ended (after it stored its outcome and woke its joiners), and
/// checks whether the threads left are all blocked.
pub fn thread_ended() {
    let mut r = registry();
    r.live = r.live.saturating_sub(1);
    check_deadlock(&mut r);
}

/// Why a wait ended without being woken.
#[derive(Clone, Debug)]
pub enum Stop {
    /// Ctrl-C (main thread only).
    Interrupted,
    /// Every thread is blocked (main thread only).
    Deadlock(Deadlock),
}

impl Stop {
    /// The error message a builtin raises for it.
    pub fn message(&self) -> String {
        match self {
            Stop::Interrupted => "interrupted".to_string(),
            Stop::Deadlock(d) => d.message.clone(),
        }
    }
}

/// Blocks the current thread until `waiter` is woken: records it as blocked in `what` (a
/// builtin's name) at `at`, checks for a deadlock, releases the GIL and parks. The caller has
/// already put `waiter` on the wait list of the object it waits for. The main thread's wait also
/// ends on Ctrl-C or a deadlock (`Err`); the caller then takes `waiter` off its list (unless it
/// was woken after all, which the caller sees with [`Waiter::is_woken`]).
pub fn block(waiter: &Arc<Waiter>, kind: Kind, what: &'static str, at: Option<Where>, gil: Gil) -> Result<(), Stop> {
    let main = on_main();
    if main {
        MAIN.get_or_init(std::thread::current);
    }
    let name = std::thread::current().name().unwrap_or("?").to_string();
    if main || COUNTED.with(Cell::get) {
        let mut r = registry();
        if waiter.is_woken() {
            return Ok(());
        }
        r.blocked.insert(waiter.key(), Blocked { name, what, at });
        check_deadlock(&mut r);
    }
    let parked = waiter.clone();
    let waited = gil.allow_threads(move || park_until_woken(&parked, main));
    add_wait(kind, waited);
    let mut r = registry();
    if waiter.is_woken() {
        return Ok(());
    }
    r.blocked.remove(&waiter.key());
    if let Some(d) = r.deadlock.clone() {
        return Err(Stop::Deadlock(d));
    }
    Err(Stop::Interrupted)
}

/// Parks until the waiter is woken, or, on the main thread, until Ctrl-C or a deadlock; returns
/// the time spent.
fn park_until_woken(waiter: &Waiter, main: bool) -> Duration {
    let started = Instant::now();
    while !waiter.is_woken() {
        if main && (gil::interrupted() || DEADLOCKED.load(Ordering::Acquire)) {
            break;
        }
        std::thread::park();
    }
    started.elapsed()
}

/// Makes a waiter able to proceed: sets its flag and removes its blocked record (both under the
/// registry's mutex, so no deadlock check sees it blocked any more), then unparks its thread.
/// Waking a waiter twice is harmless.
pub fn wake(waiter: &Waiter) {
    {
        let mut r = registry();
        waiter.woken.store(true, Ordering::Release);
        r.blocked.remove(&waiter.key());
    }
    waiter.thread.unpark();
}

/// Finds a deadlock: every live thread blocked. Records the report (once) and wakes the main
/// thread, which raises it.
fn check_deadlock(r: &mut Registry) {
    if r.deadlock.is_some() || r.live == 0 || r.blocked.len() < r.live {
        return;
    }
    r.deadlock = Some(report(r));
    DEADLOCKED.store(true, Ordering::Release);
    if let Some(main) = MAIN.get() {
        main.unpark();
    }
}

/// The deadlock error: the headline, then one line per blocked thread other than the main one,
/// in thread order (spawned threads, then `pmap`'s pool threads), each with the builtin it waits in and its location.
fn report(r: &Registry) -> Deadlock {
    let mut others: Vec<&Blocked> = r.blocked.values().filter(|b| b.name != "main").collect();
    // spawned threads by number, then pool threads (`pool-N`) by number
    others.sort_by_key(|b| {
        let pool = b.name.strip_prefix("pool-");
        (pool.is_some(), pool.unwrap_or(&b.name).parse::<u64>().unwrap_or(u64::MAX), b.name.clone())
    });
    let mut message = "deadlock: all threads are blocked".to_string();
    if r.blocked.values().any(|b| b.name == "main" && b.what == "exit") {
        message.push_str("\n  the main thread is waiting for the other threads at the end of the program");
    }
    for b in &others {
        let at = b.at.as_ref().map_or(String::new(), |w| format!(" at {w}"));
        message.push_str(&format!("\n  thread {} is blocked in {}{}", b.name, b.what, at));
    }
    Deadlock { message, first_other: others.iter().find_map(|b| b.at.clone()) }
}

/// Wakes the main thread's wait (after Ctrl-C has set the interrupt bit).
pub fn wake_main() {
    if let Some(main) = MAIN.get() {
        main.unpark();
    }
}

/// Sleeps for `d` without the GIL; the main thread's sleep ends early on Ctrl-C (`Err`).
pub fn sleep(d: Duration, gil: Gil) -> Result<(), Stop> {
    let main = on_main();
    if main {
        MAIN.get_or_init(std::thread::current);
    }
    let deadline = Instant::now().checked_add(d);
    let slept = gil.allow_threads(move || {
        let started = Instant::now();
        loop {
            if main && gil::interrupted() {
                return (started.elapsed(), false);
            }
            let now = Instant::now();
            match deadline {
                Some(t) if now >= t => return (started.elapsed(), true),
                Some(t) => std::thread::park_timeout(t - now),
                None => std::thread::park(),
            }
        }
    });
    add_wait(Kind::Sleep, slept.0);
    if slept.1 { Ok(()) } else { Err(Stop::Interrupted) }
}
