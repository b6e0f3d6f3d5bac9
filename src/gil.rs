//! The global interpreter lock. A thread must hold it to run bytecode or touch any interpreter
//! object. Holding it is a type: [`Gil`] is a zero-sized, `Copy`, non-`Send` token that only
//! [`with_gil`] hands out, and releasing the lock ([`Gil::allow_threads`]) takes a closure that
//! must be `Send`, so it can capture neither the token nor any `Value` (which are `!Send`).
//!
//! Hand-off is fair: waiters queue by ticket (FIFO). The waiter next in line, when it has waited
//! longer than the switch interval without the lock changing hands, raises a drop request; the
//! holder sees it at its next safe point (a backward jump or a call) and yields, re-queueing
//! behind the waiters. Waiters sleep until they are woken by name (the next holder, and the next
//! in line), so neither a hand-off nor a thousand waiting threads wake every waiter.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::Thread;
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
    /// The threads waiting for their ticket, in ticket order: the front is served next. Only
    /// the front two are ever woken: the next holder and, behind it, the next in line, the one
    /// waiter that times the holder. The others sleep until they reach the front, so thousands
    /// of waiting threads cost no CPU.
    queue: VecDeque<(u64, Thread)>,
}

struct Lock {
    state: Mutex<State>,
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
    state: Mutex::new(State { serving: 0, next_ticket: 0, switches: 0, queue: VecDeque::new() }),
    attention: AtomicU32::new(0),
    interval_us: AtomicU64::new(5_000),
};

/// Records a Ctrl-C; the main thread raises `interrupted` at its next safe point. Async-signal
/// safe (one atomic operation).
pub fn interrupt() {
    LOCK.attention.fetch_or(INTERRUPT, Ordering::Relaxed);
}

/// Records a Ctrl-C and asks the holder to hand the lock on, so that a main thread waiting for
/// the lock gets it soon and raises `interrupted`: after Ctrl-C the waiter next in line raises
/// the drop request again at every hand-off until the main thread holds the lock.
pub fn interrupt_and_hand_over() {
    LOCK.attention.fetch_or(INTERRUPT | DROP_REQUEST, Ordering::SeqCst);
}

/// Forgets a Ctrl-C once it has been answered: the prompt calls this before each input, so
/// that an interrupt raised (or pressed while no input ran) does not stop the next one.
pub fn clear_interrupt() {
    LOCK.attention.fetch_and(!INTERRUPT, Ordering::SeqCst);
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

/// Takes a ticket and waits until it is served. The waiter next in line asks the holder to
/// drop the lock when it has waited a whole switch interval without a hand-off (or at once
/// after Ctrl-C).
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
    st.queue.push_back((ticket, std::thread::current()));
    let mut seen_switches = st.switches;
    let mut deadline = started + interval();
    while st.serving != ticket {
        // Tickets are dense: `serving` is the holder's (or, just after a release, that of the
        // front waiter, about to hold), so the next in line has the one after it.
        let next_in_line = ticket == st.serving + 1;
        if !next_in_line {
            drop(st);
            // woken by `release` when this thread reaches the front (or spuriously)
            std::thread::park();
            st = lock_state();
            continue;
        }
        let now = Instant::now();
        if st.switches != seen_switches {
            seen_switches = st.switches;
            deadline = now + interval();
        }
        if now >= deadline || interrupted() {
            LOCK.attention.fetch_or(DROP_REQUEST, Ordering::Relaxed);
            deadline = now + interval();
        }
        drop(st);
        std::thread::park_timeout(deadline.saturating_duration_since(now));
        st = lock_state();
    }
    let served = st.queue.pop_front();
    debug_assert!(served.is_some_and(|(t, _)| t == ticket), "the GIL queue is in ticket order");
    drop(st);
    HELD.with(|h| h.set(true));
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        s.acquisitions += 1;
        s.wait += started.elapsed();
    });
}

/// Passes the lock to the next ticket, waking its thread and the next in line behind it (which
/// starts timing the new holder).
fn release() {
    HELD.with(|h| h.set(false));
    let mut st = lock_state();
    st.serving += 1;
    st.switches += 1;
    if st.queue.is_empty() {
        return;
    }
    let mut front = st.queue.iter().map(|(_, t)| t.clone());
    let wake = [front.next(), front.next()];
    drop(st);
    wake.iter().flatten().for_each(Thread::unpark);
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
///
/// `f` and its result must be `Send`, so no interpreter object can leave the lock's scope:
/// neither as the result nor through a variable the closure captures, whose drop would then
/// touch reference counts without the lock. (A program that has not started yet crosses in
/// with [`GilBound::new_unshared`].)
///
/// Each `compile_fail` example below has a twin that differs only in the point it tests and
/// compiles, so that it fails for that reason. (Stable rustdoc does not check the error code.)
///
/// ```compile_fail,E0277
/// // A value returned out of `with_gil`: dropping it touches reference counts without the lock.
/// use mini::{gil::with_gil, value::Value};
/// let escaped: Value = with_gil(|gil| Value::list(Vec::new(), gil));
/// drop(escaped);
/// ```
///
/// ```
/// // Plain data may leave.
/// use mini::{gil::with_gil, value::Value};
/// let len: usize = with_gil(|gil| Value::list(Vec::new(), gil).to_text(gil).unwrap().len());
/// assert_eq!(len, 2);
/// ```
///
/// ```compile_fail,E0277
/// // The same escape through a captured variable.
/// use mini::{gil::with_gil, value::Value};
/// let mut slot = None;
/// with_gil(|gil| slot = Some(Value::list(Vec::new(), gil)));
/// drop(slot);
/// ```
///
/// ```
/// use mini::{gil::with_gil, value::Value};
/// let mut slot = None;
/// with_gil(|gil| slot = Some(Value::list(Vec::new(), gil).to_text(gil).unwrap()));
/// assert_eq!(slot.as_deref(), Some("[]"));
/// ```
pub fn with_gil<F, R>(f: F) -> R
where
    F: for<'g> FnOnce(Gil<'g>) -> R + Send,
    R: Send,
{
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

/// Types whose values may move to another thread provided every access on every thread happens
/// under the GIL: they are `!Send` only because of non-atomic reference counts and `GilCell`
/// interiors. Only such types go into a [`GilBound`]. The token [`Gil`] is not one (moved to a
/// thread, it would claim a lock that thread does not hold), nor is anything tied to its
/// thread in another way (a `MutexGuard`, a `Vm`).
///
/// # Safety
///
/// Implement it only for types whose every thread-unsafe part is touched only by the GIL holder,
/// and which hold no `Gil` token and nothing else that belongs to one thread.
pub unsafe trait GilSend {}

// SAFETY: a vector, tuple or result of such values is touched only where its elements are.
unsafe impl<T: GilSend> GilSend for Vec<T> {}
// SAFETY: as above.
unsafe impl<A: GilSend, B: GilSend> GilSend for (A, B) {}
// SAFETY: as above.
unsafe impl<A: GilSend, B: GilSend, C: GilSend> GilSend for (A, B, C) {}
// SAFETY: as above.
unsafe impl<T: GilSend, E: GilSend> GilSend for Result<T, E> {}

/// A value that may cross to another thread because it is only touched under the GIL:
/// both putting it in and taking it out require the token, and only [`GilSend`] types go in.
/// Dropped on a thread that does not hold the GIL, it leaks its contents rather than touch
/// their reference counts.
///
/// ```compile_fail,E0277
/// // A token carried to a thread that does not hold the lock.
/// use mini::gil::{GilBound, with_gil};
/// with_gil(|gil| {
///     let bound = GilBound::new(gil, gil);
///     std::thread::scope(|s| {
///         s.spawn(move || {
///             let stolen = with_gil(|other| bound.into_inner(other));
///             stolen.yield_now(); // this thread no longer holds the lock
///         });
///     });
/// });
/// ```
///
/// ```no_run
/// // Its twin, with a value instead of the token, compiles (it would deadlock if run: the
/// // outer thread keeps the lock while the scope waits).
/// use mini::{gil::{GilBound, with_gil}, value::Value};
/// with_gil(|gil| {
///     let bound = GilBound::new(Value::list(Vec::new(), gil), gil);
///     std::thread::scope(|s| {
///         s.spawn(move || {
///             let value = with_gil(|other| bound.into_inner(other).to_text(other).unwrap());
///             assert_eq!(value, "[]");
///         });
///     });
/// });
/// ```
pub struct GilBound<T: GilSend>(ManuallyDrop<T>);

// SAFETY: `T: GilSend` is `!Send` only because of state that must be touched under the GIL. A
// `GilBound` can be created and opened only with a `Gil` token (or, by `new_unshared`, before
// any other thread can reach the contents), and its `Drop` touches the contents only when the
// dropping thread holds the GIL, so every access to the wrapped value, on whichever thread,
// happens under the GIL, which serialises them.
unsafe impl<T: GilSend> Send for GilBound<T> {}
// SAFETY: as above; a shared reference gives access to the contents only through `get`,
// which needs the token.
unsafe impl<T: GilSend> Sync for GilBound<T> {}

impl<T: GilSend> GilBound<T> {
    pub fn new(value: T, _gil: Gil<'_>) -> GilBound<T> {
        GilBound(ManuallyDrop::new(value))
    }

    /// Wraps a value without the token, for objects made before the interpreter starts (the
    /// compiled program, made without the lock).
    ///
    /// # Safety
    ///
    /// No other thread may be able to reach any interpreter object in `value`.
    pub unsafe fn new_unshared(value: T) -> GilBound<T> {
        GilBound(ManuallyDrop::new(value))
    }

    pub fn into_inner(self, _gil: Gil<'_>) -> T {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the value is moved out exactly once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }

    /// The contents, when this thread holds the GIL (for a `Drop`, which has no token);
    /// otherwise `None`, and the contents leak as when a `GilBound` is dropped off the lock.
    pub fn into_inner_if_held(self) -> Option<T> {
        if !HELD.with(|h| h.get()) {
            return None;
        }
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the value is moved out exactly once;
        // the GIL is held, so the caller may touch it.
        Some(unsafe { ManuallyDrop::take(&mut this.0) })
    }

    pub fn get<'a>(&'a self, _gil: Gil<'a>) -> &'a T {
        &self.0
    }
}

impl<T: GilSend> Drop for GilBound<T> {
    fn drop(&mut self) {
        if HELD.with(|h| h.get()) {
            // SAFETY: this is the last use of the value, and the GIL is held.
            unsafe { ManuallyDrop::drop(&mut self.0) }
        }
    }
}

/// For the safe points of compiled code (jit/lower): the attention word's address and the bits
/// a native loop acts on (a drop request, Ctrl-C); it then calls [`native_safe_point`].
pub fn native_poll_word() -> (*const AtomicU32, u32) {
    (&LOCK.attention, DROP_REQUEST | INTERRUPT)
}

/// A safe point of native code: when this thread holds the lock (`--keep-gil`) and another
/// asked for it, hands it over and queues for it again, as [`Gil::yield_now`] does; a thread
/// without the lock does nothing. Returns whether Ctrl-C has been pressed.
pub fn native_safe_point() -> bool {
    if HELD.with(|h| h.get()) && LOCK.attention.load(Ordering::Relaxed) & DROP_REQUEST != 0 {
        LOCK.attention.fetch_and(!DROP_REQUEST, Ordering::Relaxed);
        STATS.with(|s| s.borrow_mut().handoffs += 1);
        release();
        acquire();
    }
    interrupted()
}
