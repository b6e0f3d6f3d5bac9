//! Synchronisation between mini threads: locks, queues, barriers and sleep, and the one wait
//! facility they, `join` and `pmap` share, with deadlock detection (`wait.rs`). The builtins'
//! argument checks (`vm::sync_builtins`) and `pmap`'s pool (`vm::pool`) run mini code or return
//! the interpreter's errors, so they live in `vm`, above this module, which uses nothing of `vm`.
//!
//! Every primitive is an interpreter object: only a thread holding the GIL touches its state
//! (compiled code cannot call these builtins), so the state sits in `GilCell`s. A thread that
//! must wait registers a `wait::Waiter` in the object's wait list, releases the GIL and parks
//! until a waker (also holding the GIL) wakes it. What each module may touch without the GIL is
//! said in its own `//!` paragraph: only `wait.rs` (its registry mutex and waiters' flags) and
//! `stats.rs` (counters) are touched off the lock.
//!
//! `lock`, `queue`, `barrier`, `wait` and `stats` sit below the values (which hold their
//! objects); `queue` names `Value` (a queue holds values), as `gc` does.

pub mod barrier;
pub mod lock;
pub mod queue;
pub mod stats;
pub mod wait;
