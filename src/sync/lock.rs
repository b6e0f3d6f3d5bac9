//! Locks: `lock()`, `acquire`, `release`. A lock is owned by at most one thread. `release`
//! frees it and wakes the longest waiter, which takes it if it is still free when it runs; a
//! thread that releases and acquires again at once may take it first (no convoy: handing the
//! lock to a waiter that must first get the GIL would make every later acquire wait). A waiter
//! that has waited longer than `HAND_OFF_AFTER` is handed the lock directly, so none starves (Go's
//! mutex does the same). Not re-entrant: a thread acquiring a lock it holds is an error rather
//! than a wait that could never end.
//!
//! What it may touch without the GIL: nothing; the lock's state is an interpreter object's,
//! touched under the GIL (waits go through `wait.rs`).

use super::stats::{self, Site};
use super::wait::{self, Kind, Stop, Waiter, Where};
use crate::gil::{Gil, GilCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// How long the longest waiter may wait before `release` hands it the lock directly (the GIL's
/// default switch interval: the time a thread runs before a waiting thread gets the GIL).
const HAND_OFF_AFTER: Duration = Duration::from_millis(5);

/// A lock, as a program holds it (`Value::Lock`).
#[derive(Debug)]
pub struct LockObj {
    state: GilCell<LockState>,
    site: Arc<Site>,
}

#[derive(Debug, Default)]
struct LockState {
    owner: Option<ThreadId>,
    /// The waiting threads, longest first, with when each began to wait.
    waiters: VecDeque<(Arc<Waiter>, Instant)>,
}

/// Why `acquire` failed.
pub enum AcquireError {
    AlreadyHeld,
    Stopped(Stop),
}

impl LockObj {
    /// A new, free lock made at `at`.
    pub fn new(at: &Where) -> LockObj {
        LockObj { state: GilCell::new(LockState::default()), site: stats::site("lock", at) }
    }

    /// Takes the lock, waiting (without the GIL) while another thread holds it. A woken waiter
    /// that finds the lock taken again waits again at the front, keeping its place and its time.
    pub fn acquire(&self, at: Option<Where>, gil: Gil) -> Result<(), AcquireError> {
        let me = std::thread::current().id();
        stats::bump(&self.site.first);
        let mut since = None;
        loop {
            let waiter = {
                let mut st = self.state.borrow_mut(gil);
                match st.owner {
                    None => {
                        st.owner = Some(me);
                        return Ok(());
                    }
                    Some(owner) if owner == me => return Err(AcquireError::AlreadyHeld),
                    Some(_) => {}
                }
                let waiter = Waiter::new();
                match since {
                    None => {
                        stats::bump(&self.site.waited);
                        st.waiters.push_back((waiter.clone(), *since.insert(Instant::now())));
                    }
                    Some(t) => st.waiters.push_front((waiter.clone(), t)),
                }
                waiter
            };
            let blocked = wait::block(&waiter, Kind::Lock, "acquire", at.clone(), gil);
            let mut st = self.state.borrow_mut(gil);
            if st.owner == Some(me) {
                return Ok(());
            }
            if let Err(stop) = blocked {
                // only the main thread's wait ends so, and the program ends with it; a wake-up
                // it took goes to the next waiter
                st.waiters.retain(|(w, _)| !Arc::ptr_eq(w, &waiter));
                if waiter.is_woken() {
                    Self::wake_next(&mut st);
                }
                return Err(AcquireError::Stopped(stop));
            }
        }
    }

    /// Releases the lock and wakes the longest waiter (handing it the lock if it has waited
    /// `HAND_OFF_AFTER`); false if this thread does not hold it.
    pub fn release(&self, gil: Gil) -> bool {
        let mut st = self.state.borrow_mut(gil);
        if st.owner != Some(std::thread::current().id()) {
            return false;
        }
        st.owner = None;
        Self::wake_next(&mut st);
        true
    }

    /// Wakes the longest waiter of a free lock, making it the owner if it has waited long.
    fn wake_next(st: &mut LockState) {
        if let Some((w, since)) = st.waiters.pop_front() {
            if st.owner.is_none() && since.elapsed() >= HAND_OFF_AFTER {
                st.owner = Some(w.thread_id());
            }
            wait::wake(&w);
        }
    }
}
