//! Queues: `queue()`, `queue(capacity)`, `put`, `get`, `try_get`, `close`, and `for v in q`.
//! A first-in, first-out channel of values, unbounded or holding at most `capacity`; `put`
//! waits while it is full, `get` while it is empty and open. Closing wakes every waiter: getters
//! drain what is left and then fail (a `for` loop ends), putters fail.
//!
//! A queue holds values, so it is a container: `Value::Queue` is an `Obj<QueueState>`, tracked
//! by the cycle collector and freed through the trashcan like a list (see `gc.rs`).
//!
//! What it may touch without the GIL: nothing; the state is an interpreter object's, touched
//! under the GIL (waits go through `wait.rs`).

use super::stats::{self, Site};
use super::wait::{self, Kind, Stop, Waiter, Where};
use crate::gil::Gil;
use crate::value::{Queue, Value};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

/// A queue's contents and waiters.
#[derive(Debug, Default)]
pub struct QueueState {
    pub items: VecDeque<Value>,
    /// The most items it holds; 0 for no limit.
    pub capacity: usize,
    pub closed: bool,
    getters: VecDeque<Arc<Waiter>>,
    putters: VecDeque<Arc<Waiter>>,
    /// The counters of the place that made it (none after the collector cleared it).
    site: Option<Arc<Site>>,
}

/// Why a queue operation failed.
pub enum QueueError {
    /// `get` from a closed, empty queue, or `put` into a closed one.
    Closed,
    Stopped(Stop),
}

/// What taking an item without waiting finds.
enum Step {
    Item(Value),
    /// Closed and drained: the loop ends.
    End,
    /// Empty and open: the loop must wait.
    Empty,
}

/// A new queue made at `at` (`capacity` 0 for no limit).
pub fn new(capacity: usize, at: &Where, gil: Gil) -> Rc<Queue> {
    let state = QueueState { capacity, site: Some(stats::site("queue", at)), ..QueueState::default() };
    Queue::new(state, gil)
}

/// Takes the first item without waiting, waking a putter (there is room now).
fn pop(q: &Rc<Queue>, gil: Gil) -> Step {
    let mut st = q.borrow_mut(gil);
    let Some(v) = st.items.pop_front() else {
        return if st.closed { Step::End } else { Step::Empty };
    };
    if let Some(site) = &st.site {
        stats::bump(&site.second);
    }
    let putter = st.putters.pop_front();
    drop(st);
    if let Some(w) = putter {
        wait::wake(&w);
    }
    Step::Item(v)
}

/// The next item of `for v in q` without waiting, if there is one.
pub fn next(q: &Rc<Queue>, gil: Gil) -> Option<Value> {
    match pop(q, gil) {
        Step::Item(v) => Some(v),
        Step::End | Step::Empty => None,
    }
}

/// `try_get(q, default)`: the first item, or `default` when the queue is empty.
pub fn try_get(q: &Rc<Queue>, default: &Value, gil: Gil) -> Value {
    match pop(q, gil) {
        Step::Item(v) => v,
        Step::End | Step::Empty => default.clone(),
    }
}

/// `get(q)`: waits while the queue is empty and open.
pub fn get(q: &Rc<Queue>, at: Option<Where>, gil: Gil) -> Result<Value, QueueError> {
    loop {
        match pop(q, gil) {
            Step::Item(v) => return Ok(v),
            Step::End => return Err(QueueError::Closed),
            Step::Empty => wait_for_item(q, "get", at.clone(), gil).map_err(QueueError::Stopped)?,
        }
    }
}

/// Waits until the queue has an item or is closed (a getter woken by `put` or `close`); the
/// caller then looks again, since another thread may have taken the item first.
fn wait_for_item(q: &Rc<Queue>, what: &'static str, at: Option<Where>, gil: Gil) -> Result<(), Stop> {
    let waiter = Waiter::new();
    {
        let mut st = q.borrow_mut(gil);
        if !st.items.is_empty() || st.closed {
            return Ok(());
        }
        st.getters.push_back(waiter.clone());
        if let Some(site) = &st.site {
            stats::bump(&site.waited);
        }
    }
    let r = wait::block(&waiter, Kind::Queue, what, at, gil);
    if r.is_err() {
        q.borrow_mut(gil).getters.retain(|w| !Arc::ptr_eq(w, &waiter));
    }
    r
}

/// `put(q, v)`: appends `v`, waiting while the queue is full; wakes a getter.
pub fn put(q: &Rc<Queue>, v: &Value, at: Option<Where>, gil: Gil) -> Result<(), QueueError> {
    loop {
        let waiter = {
            let mut st = q.borrow_mut_to_store(v, gil);
            if st.closed {
                return Err(QueueError::Closed);
            }
            if st.capacity == 0 || st.items.len() < st.capacity {
                st.items.push_back(v.clone());
                if let Some(site) = &st.site {
                    stats::bump(&site.first);
                }
                let getter = st.getters.pop_front();
                drop(st);
                if let Some(w) = getter {
                    wait::wake(&w);
                }
                return Ok(());
            }
            let waiter = Waiter::new();
            st.putters.push_back(waiter.clone());
            if let Some(site) = &st.site {
                stats::bump(&site.waited);
            }
            waiter
        };
        if let Err(stop) = wait::block(&waiter, Kind::Queue, "put", at.clone(), gil) {
            q.borrow_mut(gil).putters.retain(|w| !Arc::ptr_eq(w, &waiter));
            return Err(QueueError::Stopped(stop));
        }
    }
}

/// `close(q)`: no more puts; wakes every waiter. False if it was already closed.
pub fn close(q: &Rc<Queue>, gil: Gil) -> bool {
    let mut guard = q.borrow_mut(gil);
    let st = &mut *guard;
    if st.closed {
        return false;
    }
    st.closed = true;
    let waiters: Vec<Arc<Waiter>> = st.getters.drain(..).chain(st.putters.drain(..)).collect();
    drop(guard);
    waiters.iter().for_each(|w| wait::wake(w));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gil::with_gil;
    use crate::source::{SourceFile, SourceMap};

    fn here() -> Where {
        Where { file: std::sync::Arc::new(SourceMap::new(SourceFile::new("t", "q"))), span: Default::default() }
    }

    #[test]
    fn a_queue_that_holds_itself_is_collected() {
        with_gil(|gil| {
            let q = new(0, &here(), gil);
            put(&q, &Value::Queue(q.clone()), None, gil).ok().expect("an open queue takes a value");
            let (l, r) = (Value::list(Vec::new(), gil), new(0, &here(), gil));
            // a cycle through a list and a second queue
            put(&r, &l, None, gil).ok().expect("open");
            let Value::List(list) = &l else { unreachable!() };
            list.borrow_mut(gil).push(Value::Queue(r.clone()));
            let (weak_q, weak_r) = (Rc::downgrade(&q), Rc::downgrade(&r));
            drop((q, r, l));
            crate::gc::collect(gil);
            assert!(weak_q.upgrade().is_none() && weak_r.upgrade().is_none());
        });
    }

    #[test]
    fn freeing_a_deep_chain_of_queues_does_not_recurse() {
        // the test thread's stack is small: a recursive drop of a million levels overflows it
        with_gil(|gil| {
            let mut v = Value::Nil;
            for _ in 0..1_000_000 {
                let q = new(0, &here(), gil);
                put(&q, &v, None, gil).ok().expect("open");
                v = Value::Queue(q);
            }
            drop(v);
        });
    }
}
