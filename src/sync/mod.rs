//! Synchronisation between mini threads: locks, queues, barriers and sleep, and the one wait
//! facility they and `join` share, with deadlock detection (`wait.rs`); and `pmap`'s pool of
//! persistent worker threads (`pool.rs`).
//!
//! Every primitive is an interpreter object: only a thread holding the GIL touches its state
//! (compiled code cannot call these builtins), so the state sits in `GilCell`s. A thread that
//! must wait registers a `wait::Waiter` in the object's wait list, releases the GIL and parks
//! until a waker (also holding the GIL) wakes it. What each module may touch without the GIL is
//! said in its own `//!` paragraph: only `wait.rs` (its registry mutex and waiters' flags) and
//! `stats.rs` (counters) are touched off the lock.
//!
//! `lock`, `queue`, `barrier`, `wait` and `stats` sit below the values (which hold their
//! objects); `builtins` is the glue that checks a builtin's arguments and turns failures into
//! errors, above the values and beside `vm::builtins`.

pub mod barrier;
pub mod builtins;
pub mod lock;
pub mod pool;
pub mod queue;
pub mod stats;
pub mod wait;
