//! The global interpreter lock. A thread must hold it to run bytecode or touch any interpreter
//! object. Holding it is a type: [`Gil`] is a zero-sized, `Copy`, non-`Send` token that only
//! [`with_gil`] hands out, and releasing the lock ([`Gil::allow_threads`]) takes a closure that
//! must be `Send`, so it can capture neither the token nor any `Value` (which are `!Send`).
//!
//! Hand-off is fair: waiters queue by ticket (FIFO). A waiter that has waited longer than the
//! switch interval without the lock changing hands raises a drop request; the holder sees it at
//! its next safe point (a backward jump or a call) and yields, re-queueing behind the waiters.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Proof that the current thread holds the GIL. It cannot be sent to another thread and cannot
/// outlive the [`with_gil`] call that created it.
#[derive(Clone, Copy)]
pub struct Gil<'g> {
    _not_send: PhantomData<(&'g (), *const ())>,
}

struct State {
    /// The ticket that may hold the lock now; it is held when `serving < next_ticket` and
    /// the holder has not released it.
    serving: u64,
    next_ticket: u64,
    /// Counts hand-offs, so that a waiter can tell whether the lock changed hands.
    switches: u64,
    /// Threads waiting for their ticket (a release with none skips the wake-up system call).
    waiters: u32,
}

struct Lock {
    state: Mutex<State>,
    changed: Condvar,
    /// The "something needs attention" word read at every safe point: `DROP_REQUEST` is set by
    /// a waiter that has waited a whole switch interval, `INTERRUPT` by Ctrl-C.
    attention: AtomicU32,
    interval_us: AtomicU64,
}

const DROP_REQUEST: u32 = 1;
const INTERRUPT: u32 = 2;
/// The cycle collector wants to run (`gc.rs`); the next safe point of the GIL holder runs it.
const COLLECT: u32 = 4;

static LOCK: Lock = Lock {
    state: Mutex::new(State { serving: 0, next_ticket: 0, switches: 0, waiters: 0 }),
    changed: Condvar::new(),
    attention: AtomicU32::new(0),
    interval_us: AtomicU64::new(5_000),
};

/// Records a Ctrl-C; the main thread raises `interrupted` at its next safe point.
pub fn interrupt() {
    LOCK.attention.fetch_or(INTERRUPT, Ordering::Relaxed);
}

/// Asks the GIL holder to run the cycle collector at its next safe point.
pub fn request_collection() {
    LOCK.attention.fetch_or(COLLECT, Ordering::Relaxed);
}

/// Whether Ctrl-C has been pressed.
pub fn interrupted() -> bool {
    LOCK.attention.load(Ordering::Relaxed) & INTERRUPT != 0
}

/// Per-thread GIL statistics, reported by `--stats`.
#[derive(Clone, Debug, Default)]
pub struct GilStats {
    pub acquisitions: u64,
    pub handoffs: u64,
    pub wait: Duration,
}

thread_local! {
    static HELD: Cell<bool> = const { Cell::new(false) };
    static STATS: RefCell<GilStats> = RefCell::new(GilStats::default());
}

/// Sets the switch interval (the `--switch-interval` option).
pub fn set_switch_interval(interval: Duration) {
    LOCK.interval_us.store(interval.as_micros().max(1) as u64, Ordering::Relaxed);
}

/// This thread's GIL statistics so far.
pub fn thread_stats() -> GilStats {
    STATS.with(|s| s.borrow().clone())
}

fn lock_state() -> MutexGuard<'static, State> {
    LOCK.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn interval() -> Duration {
    Duration::from_micros(LOCK.interval_us.load(Ordering::Relaxed))
}

/// Takes a ticket and waits until it is served. While waiting longer than the switch interval
/// without a hand-off, asks the holder to drop the lock.
fn acquire() {
    let mut st = lock_state();
    let ticket = st.next_ticket;
    st.next_ticket += 1;
    if st.serving == ticket {
        // Uncontended: no clock reads, no waiting (native calls release and retake the lock
        // around every call).
        drop(st);
        HELD.with(|h| h.set(true));
        STATS.with(|s| s.borrow_mut().acquisitions += 1);
        return;
    }
    let started = Instant::now();
    st.waiters += 1;
    let mut seen_switches = st.switches;
    let mut deadline = Instant::now() + interval();
    while st.serving != ticket {
        let now = Instant::now();
        if st.switches != seen_switches {
            seen_switches = st.switches;
            deadline = now + interval();
        } else if now >= deadline {
            LOCK.attention.fetch_or(DROP_REQUEST, Ordering::Relaxed);
            deadline = now + interval();
        }
        let wait = deadline.saturating_duration_since(now);
        st = LOCK.changed.wait_timeout(st, wait).unwrap_or_else(|e| e.into_inner()).0;
    }
    st.waiters -= 1;
    drop(st);
    HELD.with(|h| h.set(true));
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        s.acquisitions += 1;
        s.wait += started.elapsed();
    });
}

fn release() {
    HELD.with(|h| h.set(false));
    let mut st = lock_state();
    st.serving += 1;
    st.switches += 1;
    let wake = st.waiters > 0;
    drop(st);
    if wake {
        LOCK.changed.notify_all();
    }
}

/// Releases the lock when dropped, so that a panic cannot leave it held forever.
struct Held;

impl Drop for Held {
    fn drop(&mut self) {
        release();
    }
}

/// Runs `f` holding the GIL, handing it the token. The lock is released when `f` returns.
/// Nested calls on a thread that already holds the lock are a bug and abort the call.
pub fn with_gil<R>(f: impl for<'g> FnOnce(Gil<'g>) -> R) -> R {
    assert!(!HELD.with(|h| h.get()), "with_gil called while holding the GIL");
    acquire();
    let _held = Held;
    f(Gil { _not_send: PhantomData })
}

impl<'g> Gil<'g> {
    /// True when a safe point has something to do (a drop request or an interrupt): one load.
    #[inline(always)]
    pub fn needs_attention(self) -> bool {
        LOCK.attention.load(Ordering::Relaxed) != 0
    }

    /// True when another thread has asked for the lock.
    pub fn drop_requested(self) -> bool {
        LOCK.attention.load(Ordering::Relaxed) & DROP_REQUEST != 0
    }

    /// Takes a pending request of the cycle collector (true at most once per request).
    pub fn take_collection_request(self) -> bool {
        LOCK.attention.load(Ordering::Relaxed) & COLLECT != 0
            && LOCK.attention.fetch_and(!COLLECT, Ordering::Relaxed) & COLLECT != 0
    }

    /// Hands the lock to the longest waiter and queues for it again.
    pub fn yield_now(self) {
        LOCK.attention.fetch_and(!DROP_REQUEST, Ordering::Relaxed);
        STATS.with(|s| s.borrow_mut().handoffs += 1);
        release();
        acquire();
    }

    /// Runs `f` without the lock (around blocking operations and native code). `f` must be
    /// `Send`, so it can capture neither this token nor any interpreter value.
    pub fn allow_threads<T: Send>(self, f: impl FnOnce() -> T + Send) -> T {
        release();
        struct Reacquire;
        impl Drop for Reacquire {
            fn drop(&mut self) {
                acquire();
            }
        }
        let _again = Reacquire;
        f()
    }
}

/// Interior mutability for interpreter objects: borrowing the contents needs the GIL token.
/// The `RefCell` inside catches same-thread aliasing; the GIL excludes other threads.
#[derive(Debug, Default)]
pub struct GilCell<T>(RefCell<T>);

impl<T> GilCell<T> {
    pub fn new(value: T) -> GilCell<T> {
        GilCell(RefCell::new(value))
    }

    pub fn borrow<'a>(&'a self, _gil: Gil<'a>) -> Ref<'a, T> {
        self.0.borrow()
    }

    pub fn borrow_mut<'a>(&'a self, _gil: Gil<'a>) -> RefMut<'a, T> {
        self.0.borrow_mut()
    }

    /// Borrows unless the contents are mutably borrowed (the cycle collector never waits).
    pub fn try_borrow<'a>(&'a self, _gil: Gil<'a>) -> Option<Ref<'a, T>> {
        self.0.try_borrow().ok()
    }

    /// Borrows mutably unless the contents are borrowed.
    pub fn try_borrow_mut<'a>(&'a self, _gil: Gil<'a>) -> Option<RefMut<'a, T>> {
        self.0.try_borrow_mut().ok()
    }

    /// The contents, through exclusive access (no token needed: `&mut` excludes every borrow).
    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

/// A value that may cross to another thread because it is only touched under the GIL:
/// both putting it in and taking it out require the token. Dropped on a thread that does not
/// hold the GIL, it leaks its contents rather than touch their reference counts.
pub struct GilBound<T>(ManuallyDrop<T>);

// SAFETY: interpreter values are `!Send` only because their reference counts and interiors are
// not atomic. A `GilBound` can be created and opened only with a `Gil` token, and its `Drop`
// touches the contents only when the dropping thread holds the GIL, so every access to the
// wrapped value, on whichever thread, happens under the GIL, which serialises them.
unsafe impl<T> Send for GilBound<T> {}
// SAFETY: as above; a shared reference gives access to the contents only through `get`,
// which needs the token.
unsafe impl<T> Sync for GilBound<T> {}

impl<T> GilBound<T> {
    pub fn new(value: T, _gil: Gil<'_>) -> GilBound<T> {
        GilBound(ManuallyDrop::new(value))
    }

    pub fn into_inner(self, _gil: Gil<'_>) -> T {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the value is moved out exactly once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }

    pub fn get<'a>(&'a self, _gil: Gil<'a>) -> &'a T {
        &self.0
    }
}

impl<T> Drop for GilBound<T> {
    fn drop(&mut self) {
        if HELD.with(|h| h.get()) {
            // SAFETY: this is the last use of the value, and the GIL is held.
            unsafe { ManuallyDrop::drop(&mut self.0) }
        }
    }
}
