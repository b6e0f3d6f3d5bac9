//! Running a compiled `prange` loop's blocks on a pool of worker threads, without the GIL.
//!
//! The lowering outlines one block of a parallel loop (lang-spec/parallel.md) into a native
//! function of its own, a [`BlockFn`]: given the loop's live values (`env`) and a block index,
//! it runs the block's iterations in order from the reductions' identities and writes the
//! block's partial results. The enclosing compiled function calls [`mini_prange_run`], which
//! runs every block (on this thread, or on the pool when the loop is long enough), then combines
//! the partials itself, in block order, with the interpreter's operators. So the result never
//! depends on the number of threads, or on which thread ran which block.
//!
//! Errors: each block records its own error (the thread-local `JitCtx` of whichever thread ran
//! it); the lowest failing block's wins, which is the error of the lowest failing iteration,
//! since a block runs its iterations in order. Blocks after a failed one may be skipped.
//!
//! Why rayon: its pool is well kept and work-stealing, serves several callers at once (a
//! `prange` in functions that several mini threads run), and runs a caller's job on its own
//! threads while the caller waits, so `--threads N` means N threads computing. Its workers never
//! run interpreter code and never take the GIL: only native code and the runtime helpers, which
//! touch no interpreter object (see runtime.rs).

use super::runtime::{self, JitCtx, status};
use crate::bytecode::{PrangeCounts, SEQUENTIAL_NESTED, SEQUENTIAL_ONE_THREAD, SEQUENTIAL_SHORT};
use rayon::prelude::*;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An outlined block: `(room, env, k, out) -> status`. `env` holds the loop's live values, one
/// 64-bit slot each (as the entry trampoline's argument slots); the block's partial results go
/// to `out`, one slot per reduction.
pub type BlockFn = unsafe extern "C" fn(i64, *const u64, i64, *mut u64) -> i64;

/// Set in `mini_prange_run`'s `width` when the body may draw random numbers: the loop's
/// `base` is then real, and this thread's generator is seeded after the loop (else
/// `mini_prange_plan` has seeded it already).
pub const DRAWS_FLAG: i64 = 1 << 32;

/// Set in `mini_prange_run`'s `width` when the body has a loop or a call: the loop is worth
/// sharing whatever its first block takes, so every block goes to the pool at once (timing
/// block 0 alone first left one thread idle for a block: a matrix product of 8 blocks ran 1.5
/// times faster on 2 threads instead of 1.9).
pub const HEAVY_FLAG: i64 = 1 << 33;

/// A loop whose blocks, run one after another, are expected to take less than this runs on the
/// calling thread alone: waking the pool costs a few microseconds (a loop over 1,000 cheap
/// iterations must not be slower than `range`).
const MIN_PARALLEL_WORK: Duration = Duration::from_micros(50);

thread_local! {
    /// Whether this thread is running a block of a parallel loop: a `prange` nested in one (in
    /// its body, or in a function it calls) runs its blocks in order on the same thread.
    static IN_BLOCK: Cell<bool> = const { Cell::new(false) };

    /// The error of the lowest failing block of the last loop this thread ran, kept until the
    /// enclosing code has combined the blocks before it (whose combination may fail first).
    static FAILED: std::cell::RefCell<Option<Failure>> = const { std::cell::RefCell::new(None) };
}

/// A failed block's error, taken from the `JitCtx` of the thread that ran it.
struct Failure {
    block: usize,
    status: i64,
    ctx: JitCtx,
}

// SAFETY: a `JitCtx` holds only an error code and `(*const Proto, usize)` frames. The
// prototypes belong to the running program and are never written or freed while it runs (see
// `JitCtx::trace`), so the pointers may be read on any thread.
unsafe impl Send for Failure {}

/// The pools, by thread count, made at first use and kept for the program's life.
static POOLS: Mutex<Option<HashMap<usize, Arc<rayon::ThreadPool>>>> = Mutex::new(None);

/// In a child process just forked (`forked`, a process `pmap`): forgets the pools, whose
/// threads exist only in the parent (a `prange` loop would wait for them for ever); the child
/// makes its own at first use. The old pools are leaked, not dropped: dropping one would signal
/// threads that are not there.
pub(crate) fn forget_pools_after_fork() {
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::forget(pools.take());
}

/// The pool of `n` threads.
fn pool(n: usize) -> Option<Arc<rayon::ThreadPool>> {
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    let pools = pools.get_or_insert_with(HashMap::new);
    if let Some(p) = pools.get(&n) {
        return Some(p.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("prange-{}", i + 1))
        .stack_size(crate::parallel::THREAD_STACK)
        .build()
        .ok()?;
    let pool = Arc::new(pool);
    pools.insert(n, pool.clone());
    Some(pool)
}

/// The partial-result buffer, written by every block at its own offset.
#[derive(Clone, Copy)]
struct Out(*mut u64);

// SAFETY: block `k` writes only slots `k * width .. (k + 1) * width` of the buffer, which the
// caller allocated for `nblocks * width` slots and keeps alive until every block has finished
// (rayon's `install` returns only then); no slot is written by two blocks or read meanwhile.
unsafe impl Send for Out {}
// SAFETY: as for `Send`: concurrent blocks write disjoint slots.
unsafe impl Sync for Out {}

/// The loop's live values, read by every block.
#[derive(Clone, Copy)]
struct Env(*const u64);

// SAFETY: the enclosing native frame owns the slots and does not write them until every block
// has finished; blocks only read them. The array buffers they point to are kept alive by the
// enclosing call (see the JIT's invariant in ARCHITECTURE.md) and are `AtomicU64`s.
unsafe impl Send for Env {}
// SAFETY: as for `Send`: shared reads only.
unsafe impl Sync for Env {}

/// Runs block `k` on this thread with block `k`'s random generator; `Err` holds its error.
fn run_block(f: BlockFn, room: i64, env: Env, k: usize, base: u64, out: Out, width: usize) -> Result<(), Failure> {
    let _generator = crate::vm::random::ItemGenerator::enter(base, k);
    let was = IN_BLOCK.with(|b| b.replace(true));
    runtime::begin();
    // SAFETY: `f` is an outlined block the lowering compiled with the `BlockFn` signature for
    // this loop, `env` holds the live values it was compiled for, and `out` has room for block
    // `k`'s `width` slots (see `Out`).
    let st = unsafe { f(room, env.0, k as i64, out.0.add(k * width)) };
    IN_BLOCK.with(|b| b.set(was));
    if st == status::OK { Ok(()) } else { Err(Failure { block: k, status: st, ctx: runtime::take_ctx() }) }
}

/// Runs blocks `0..nblocks` of a parallel loop and returns the lowest failing block (or
/// `nblocks`); its error is kept for [`mini_prange_failure`]. Block 0 runs on this thread and is
/// timed; the rest go to the pool when that many blocks would take long enough, else they run
/// here too. Afterwards this thread's generator continues from `base + nblocks`.
///
/// # Safety
/// Called by native code with an outlined block of this loop, its live values, a buffer of
/// `nblocks * width` slots, and the loop's counters.
pub unsafe extern "C" fn mini_prange_run(
    f: BlockFn,
    room: i64,
    env: *const u64,
    nblocks: i64,
    base: i64,
    out: *mut u64,
    width: i64,
    counts: *const PrangeCounts,
) -> i64 {
    // SAFETY: native code passes the counters of the loop's `PrangeInfo`, in a prototype that
    // lives as long as the program; they are atomics.
    let counts = unsafe { &*counts };
    let draws = width & DRAWS_FLAG != 0;
    let heavy = width & HEAVY_FLAG != 0;
    let (n, width, base) = (nblocks.max(0) as usize, (width & !(DRAWS_FLAG | HEAVY_FLAG)).max(0) as usize, base as u64);
    let (env, out) = (Env(env), Out(out));
    let start = Instant::now();
    let threads = crate::parallel::threads();
    let nested = IN_BLOCK.with(|b| b.get());
    let why = |long: bool| {
        if nested {
            SEQUENTIAL_NESTED
        } else if threads < 2 {
            SEQUENTIAL_ONE_THREAD
        } else if !long {
            SEQUENTIAL_SHORT
        } else {
            0
        }
    };
    // a heavy loop goes to the pool whole; another one times its block 0 here first
    let mut first = 0;
    let mut failed = None;
    if n > 0 && !(heavy && n > 1 && why(true) == 0) {
        failed = run_block(f, room, env, 0, base, out, width).err();
        first = 1;
    }
    let took = start.elapsed();
    let long = heavy || took.saturating_mul(n.saturating_sub(1).min(u32::MAX as usize) as u32) >= MIN_PARALLEL_WORK;
    if failed.is_none() && n > first {
        let why = why(long);
        let pool = if why == 0 { pool(threads) } else { None };
        failed = match pool {
            Some(pool) => {
                let failed = run_on_pool(&pool, f, room, env, first..n, base, out, width);
                counts.parallel.fetch_add(1, Ordering::Relaxed);
                counts.threads.fetch_max(threads as u64, Ordering::Relaxed);
                counts.parallel_nanos.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                failed
            }
            None => {
                counts.sequential.fetch_or(why, Ordering::Relaxed);
                (first..n).find_map(|k| run_block(f, room, env, k, base, out, width).err())
            }
        };
    }
    if n == 1 {
        counts.sequential.fetch_or(SEQUENTIAL_SHORT, Ordering::Relaxed);
    }
    let lowest = failed.as_ref().map_or(n, |e| e.block);
    FAILED.with(|slot| *slot.borrow_mut() = failed);
    if draws {
        crate::vm::random::seed_lazily(base.wrapping_add(n as u64));
    }
    lowest as i64
}

/// Blocks `blocks` on the pool; the lowest failing one's error. Blocks above a failed one are
/// skipped (their results are not needed: the loop raises).
#[allow(clippy::too_many_arguments)]
fn run_on_pool(
    pool: &rayon::ThreadPool,
    f: BlockFn,
    room: i64,
    env: Env,
    blocks: std::ops::Range<usize>,
    base: u64,
    out: Out,
    width: usize,
) -> Option<Failure> {
    let lowest = AtomicUsize::new(blocks.end);
    let failure: Mutex<Option<Failure>> = Mutex::new(None);
    pool.install(|| {
        blocks.into_par_iter().with_max_len(1).for_each(|k| {
            if k > lowest.load(Ordering::Relaxed) {
                return;
            }
            if let Err(e) = run_block(f, room, env, k, base, out, width) {
                lowest.fetch_min(k, Ordering::Relaxed);
                let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                if slot.as_ref().is_none_or(|old| old.block > k) {
                    *slot = Some(e);
                }
            }
        })
    });
    failure.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// The error of the lowest failing block of the loop this thread last ran, moved into this
/// thread's `JitCtx`; returns its status. Native code calls it after combining the blocks before
/// the failed one.
pub extern "C" fn mini_prange_failure() -> i64 {
    match FAILED.with(|slot| slot.borrow_mut().take()) {
        Some(f) => {
            runtime::put_ctx(f.ctx);
            f.status
        }
        None => status::OK,
    }
}
