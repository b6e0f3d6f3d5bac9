//! Barriers: `barrier(n)` and `wait(b)`. Threads arriving at a barrier wait until `n` have
//! arrived; the n-th releases them all, and the barrier is ready for the next round at once
//! (as Python's `threading.Barrier`). `wait` returns the thread's arrival index in its round,
//! 0 for the first, `n - 1` for the one that released the others.
//!
//! What it may touch without the GIL: nothing; the state is an interpreter object's, touched
//! under the GIL (waits go through `wait.rs`).

use super::wait::{self, Kind, Stop, Waiter, Where};
use crate::gil::{Gil, GilCell};
use std::sync::Arc;

/// A barrier, as a program holds it (`Value::Barrier`).
#[derive(Debug)]
pub struct BarrierObj {
    pub parties: usize,
    arrived: GilCell<Vec<Arc<Waiter>>>,
}

impl BarrierObj {
    /// A barrier for `parties` threads (at least 1).
    pub fn new(parties: usize) -> BarrierObj {
        BarrierObj { parties, arrived: GilCell::new(Vec::new()) }
    }

    /// Arrives and waits for the round to fill; returns the arrival index.
    pub fn wait(&self, at: Option<Where>, gil: Gil) -> Result<usize, Stop> {
        let waiter = {
            let mut arrived = self.arrived.borrow_mut(gil);
            let index = arrived.len();
            if index + 1 == self.parties {
                let round = std::mem::take(&mut *arrived);
                drop(arrived);
                round.iter().for_each(|w| wait::wake(w));
                return Ok(index);
            }
            let waiter = Waiter::new();
            arrived.push(waiter.clone());
            (waiter, index)
        };
        let (waiter, index) = waiter;
        match wait::block(&waiter, Kind::Barrier, "wait", at, gil) {
            Ok(()) => Ok(index),
            Err(stop) => {
                self.arrived.borrow_mut(gil).retain(|w| !Arc::ptr_eq(w, &waiter));
                if waiter.is_woken() { Ok(index) } else { Err(stop) }
            }
        }
    }
}
