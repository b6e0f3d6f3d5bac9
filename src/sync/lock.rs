//! Locks: `lock()`, `acquire`, `release`. A lock is owned by at most one thread; `release`
//! hands it straight to the longest waiter (first in, first out), so a releasing thread cannot
//! take it back before the waiter runs. Not re-entrant: a thread acquiring a lock it holds is
//! an error rather than a wait that could never end.
//!
//! What it may touch without the GIL: nothing; the lock's state is an interpreter object's,
//! touched under the GIL (waits go through `wait.rs`).

use super::stats::{self, Site};
use super::wait::{self, Kind, Stop, Waiter, Where};
use crate::gil::{Gil, GilCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::ThreadId;

/// A lock, as a program holds it (`Value::Lock`).
#[derive(Debug)]
pub struct LockObj {
    state: GilCell<LockState>,
    site: Arc<Site>,
}

#[derive(Debug, Default)]
struct LockState {
    owner: Option<ThreadId>,
    waiters: VecDeque<Arc<Waiter>>,
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

    /// Takes the lock, waiting (without the GIL) while another thread holds it.
    pub fn acquire(&self, at: Option<Where>, gil: Gil) -> Result<(), AcquireError> {
        let me = std::thread::current().id();
        stats::bump(&self.site.first);
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
            st.waiters.push_back(waiter.clone());
            waiter
        };
        stats::bump(&self.site.waited);
        match wait::block(&waiter, Kind::Lock, "acquire", at, gil) {
            Ok(()) => Ok(()),
            Err(stop) => {
                // only the main thread's wait ends so, and the program ends with it
                let mut st = self.state.borrow_mut(gil);
                st.waiters.retain(|w| !Arc::ptr_eq(w, &waiter));
                if waiter.is_woken() { Ok(()) } else { Err(AcquireError::Stopped(stop)) }
            }
        }
    }

    /// Releases the lock, handing it to the longest waiter; false if this thread does not hold
    /// it.
    pub fn release(&self, gil: Gil) -> bool {
        let mut st = self.state.borrow_mut(gil);
        if st.owner != Some(std::thread::current().id()) {
            return false;
        }
        let next = st.waiters.pop_front();
        st.owner = next.as_ref().map(|w| w.thread_id());
        drop(st);
        if let Some(w) = next {
            wait::wake(&w);
        }
        true
    }
}
