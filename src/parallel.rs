//! The facts about parallel loops that every runner shares (lang-spec/parallel.md): the block
//! plan of a `prange` loop, whose boundaries depend only on the range, the thread-count setting
//! (`set_threads`, `threads`, `mini run --threads N`), and the stack size of threads that run
//! mini code. A bottom-layer module: the compiler, the interpreter and the JIT all read it, and
//! it depends on nothing of theirs.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The stack size of every thread that runs mini code, interpreted or native (virtual;
/// touched only as used).
pub const THREAD_STACK: usize = 256 << 20;

/// The shortest block: a loop of at most this many iterations is one block.
pub const MIN_BLOCK: u64 = 64;

/// The most blocks a loop is cut into (more only when `MIN_BLOCK` forces it: never, since
/// `ceil(n / MAX_BLOCKS)` blocks of at least that length cover `n`).
pub const MAX_BLOCKS: u64 = 256;

/// The largest thread count `set_threads` and `--threads` accept.
pub const MAX_THREADS: usize = 256;

/// The thread count; 0 until set or first read (then the machine's parallelism).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The block plan of a loop of `n > 0` iterations: `(B, nblocks)` with the block length
/// `B = max(64, ceil(n / 256))` and `nblocks = ceil(n / B)`. Block `k` holds iterations
/// `k*B .. min((k+1)*B, n)`.
pub fn plan(n: u64) -> (u64, u64) {
    let b = MIN_BLOCK.max(n.div_ceil(MAX_BLOCKS));
    (b, n.div_ceil(b))
}

/// A plan with blocks as short as `MAX_BLOCKS` allows, for loops whose results do not depend on
/// where blocks begin (no reductions, no random numbers): compiled code may cut such a loop
/// finer, so that the pool can balance a few costly iterations.
pub fn fine_plan(n: u64) -> (u64, u64) {
    let b = n.div_ceil(MAX_BLOCKS).max(1);
    (b, n.div_ceil(b))
}

/// The number of iterations of `range(start, stop, step)` (`step != 0`), which may exceed
/// `i64::MAX` (but never `u64::MAX`).
pub fn count(start: i64, stop: i64, step: i64) -> u64 {
    let (start, stop, step) = (start as i128, stop as i128, step as i128);
    let n = if step > 0 {
        if start >= stop { 0 } else { (stop - start + step - 1) / step }
    } else if start <= stop {
        0
    } else {
        (start - stop - step - 1) / -step
    };
    n as u64
}

/// The first value of the loop variable in block `k` of a loop `start, step` with blocks of
/// `b` iterations: `start + k*b*step`, inside the range (the block exists), so it fits.
pub fn block_start(start: i64, step: i64, b: u64, k: u64) -> i64 {
    (start as i128 + (k as i128) * (b as i128) * (step as i128)) as i64
}

/// The exclusive end of block `k`: the range's own `stop` for the last block, else the value
/// after the block's last iteration (`start + (k+1)*b*step`, inside the range).
pub fn block_stop(start: i64, stop: i64, step: i64, b: u64, k: u64, n: u64) -> i64 {
    let end = (k + 1).saturating_mul(b);
    if end >= n { stop } else { block_start(start, step, b, k + 1) }
}

/// The thread count parallel loops use: the last `set_threads`, else the machine's
/// parallelism (`cpu_count()`).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_THREADS);
            // another thread may have set it meanwhile: its value wins
            match THREADS.compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => n,
                Err(set) => set,
            }
        }
        n => n,
    }
}

/// Sets the thread count; `n` must be in `1..=MAX_THREADS` (the error says so otherwise).
pub fn set_threads(n: i64) -> Result<(), String> {
    if !(1..=MAX_THREADS as i64).contains(&n) {
        return Err(format!("set_threads() needs a thread count from 1 to {MAX_THREADS}, not {n}"));
    }
    THREADS.store(n as usize, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_blocks_of_at_least_64_and_at_most_256_blocks() {
        assert_eq!(plan(1), (64, 1));
        assert_eq!(plan(64), (64, 1));
        assert_eq!(plan(65), (64, 2));
        assert_eq!(plan(16384), (64, 256));
        assert_eq!(plan(16385), (65, 253));
        assert_eq!(plan(1_000_000), (3907, 256));
        assert_eq!(plan(u64::MAX), (u64::MAX.div_ceil(256), 256));
    }

    #[test]
    fn counts_iterations_of_every_range() {
        assert_eq!(count(0, 10, 1), 10);
        assert_eq!(count(0, 10, 3), 4);
        assert_eq!(count(10, 0, -3), 4);
        assert_eq!(count(5, 5, 1), 0);
        assert_eq!(count(5, 0, 1), 0);
        assert_eq!(count(0, 5, -1), 0);
        assert_eq!(count(i64::MIN, i64::MAX, 1), u64::MAX);
        assert_eq!(count(i64::MAX, i64::MIN, -1), u64::MAX);
        assert_eq!(count(i64::MIN, i64::MAX, i64::MAX), 3);
    }

    #[test]
    fn block_bounds_cover_the_range_without_overflow() {
        let (start, stop, step) = (i64::MAX - 5, i64::MIN, -(1 << 62));
        let n = count(start, stop, step);
        let (b, nb) = plan(n);
        assert_eq!(nb, 1);
        assert_eq!(block_start(start, step, b, 0), start);
        assert_eq!(block_stop(start, stop, step, b, 0, n), stop);
        let (b, nb) = plan(1000);
        assert_eq!((b, nb), (64, 16));
        assert_eq!(block_start(3, 2, b, 1), 3 + 128);
        assert_eq!(block_stop(3, 2003, 2, b, 0, 1000), 3 + 128);
        assert_eq!(block_stop(3, 2003, 2, b, 15, 1000), 2003);
    }

    #[test]
    fn thread_counts_are_checked() {
        assert!(set_threads(0).is_err());
        assert!(set_threads(257).is_err());
        assert!(threads() >= 1);
    }
}
