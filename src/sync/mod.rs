//! Synchronisation and parallel work for mini threads.

pub mod pool;
