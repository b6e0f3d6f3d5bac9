//! What native code hands back and calls into: the per-call context that collects an error and
//! its stack, the status codes, and the `extern "C"` helpers (math with the interpreter's exact
//! results, error recording, the loop safe point). Helpers touch no interpreter object, so they run
//! without the GIL (the safe point only hands over the lock when this thread holds it).

use crate::bytecode::{PrangeCounts, Proto};
use crate::num;
use crate::source::TraceFrame;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Status codes returned by native functions (0 is success); each is one interpreter error.
pub mod status {
    pub const OK: i64 = 0;
    pub const OVERFLOW: i64 = 1;
    pub const DIV_ZERO: i64 = 2;
    pub const INDEX: i64 = 3;
    pub const STACK: i64 = 4;
    pub const STEP_ZERO: i64 = 5;
    pub const NAN_TO_INT: i64 = 6;
    pub const INF_TO_INT: i64 = 7;
    pub const INTERRUPTED: i64 = 8;
    pub const GLOBAL_CHANGED: i64 = 9;
    pub const NEG_SHIFT: i64 = 10;
    pub const RANDINT_EMPTY: i64 = 11;
    pub const PRANGE_STEP_ZERO: i64 = 12;
    pub const LIST_INDEX: i64 = 13;
    /// `array(n, fill)` in native code (jit/alloc.rs)
    pub const ARRAY_NEGATIVE: i64 = 14;
    pub const ARRAY_ALLOC: i64 = 15;
    /// `array([d0, ...], fill)` (ndalloc): a negative dimension `a` of value `b`, and a shape
    /// that cannot be had (`a` is the odd word of `alloc::mini_array_new_shaped`)
    pub const ARRAY_DIM_NEGATIVE: i64 = 16;
    pub const ARRAY_SHAPE_ALLOC: i64 = 17;
    /// An index out of range for dimension `k` of an array of several dimensions is
    /// `INDEX_DIM + k` (`k < MAX_DIMS`).
    pub const INDEX_DIM: i64 = 100;
}

/// The context of the native call running on this thread (one at a time: native code never
/// calls back into the VM). On an error, the failing function records the error and each native
/// caller on the way out records its frame, innermost first.
#[derive(Default)]
pub struct JitCtx {
    error: Option<(i64, i64, i64)>,
    frames: Vec<(*const Proto, usize)>,
}

thread_local! {
    static CTX: RefCell<JitCtx> = RefCell::new(JitCtx::default());
}

/// Prepares this thread's context for a native call.
pub fn begin() {
    CTX.with(|c| {
        let mut c = c.borrow_mut();
        c.error = None;
        c.frames.clear();
    });
}

/// Takes this thread's context (a failed parallel-loop block's error, moved to the thread that
/// raises it), leaving it empty.
pub fn take_ctx() -> JitCtx {
    CTX.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

/// Makes `ctx` this thread's context: the error its next status reports.
pub fn put_ctx(ctx: JitCtx) {
    CTX.with(|c| *c.borrow_mut() = ctx);
}

/// The error a native call on this thread returned a status for: its message and native frames.
pub fn failure() -> (String, Vec<TraceFrame>) {
    CTX.with(|c| {
        let c = c.borrow();
        (c.message(), c.trace())
    })
}

impl JitCtx {
    /// The interpreter's message for the recorded error.
    pub fn message(&self) -> String {
        let (code, a, b) = self.error.unwrap_or((0, 0, 0));
        match code {
            status::OVERFLOW => num::OVERFLOW.into(),
            status::DIV_ZERO => num::DIV_ZERO.into(),
            status::INDEX => format!("index {a} out of range for array of length {b}"),
            status::STACK => "stack overflow".into(),
            status::STEP_ZERO => "range() step must not be zero".into(),
            status::PRANGE_STEP_ZERO => "prange() step must not be zero".into(),
            status::LIST_INDEX => format!("index {a} out of range for list of length {b}"),
            status::NAN_TO_INT => "cannot convert nan to int".into(),
            status::INF_TO_INT => "cannot convert inf to int".into(),
            status::INTERRUPTED => "interrupted".into(),
            status::NEG_SHIFT => crate::vm::ops::NEG_SHIFT.into(),
            status::RANDINT_EMPTY => crate::vm::random::empty_range(a, b),
            k if (status::INDEX_DIM..status::INDEX_DIM + crate::value::MAX_DIMS as i64).contains(&k) => {
                format!("index {a} out of range for dimension {} of length {b}", k - status::INDEX_DIM)
            }
            // the interpreter's `array` errors (vm/builtins.rs)
            status::ARRAY_NEGATIVE => crate::value::NEGATIVE_LENGTH.into(),
            status::ARRAY_ALLOC => crate::value::cannot_allocate(a),
            status::ARRAY_DIM_NEGATIVE => crate::value::negative_dimension(a, b),
            // SAFETY: native code records for this status the word `mini_array_new_shaped`
            // returned when it failed.
            status::ARRAY_SHAPE_ALLOC => unsafe { crate::jit::alloc::shape_message(a) },
            status::GLOBAL_CHANGED => {
                // SAFETY: native code passes a `GlobalSite` the lowering leaked for it, which
                // lives as long as the program and is never written after compiling.
                let site = unsafe { &*(a as *const GlobalSite) };
                site.message(b as u64)
            }
            other => format!("internal error: native code returned status {other}"),
        }
    }

    /// The native frames of the error, outermost first.
    pub fn trace(&self) -> Vec<TraceFrame> {
        self.frames
            .iter()
            .rev()
            .map(|&(proto, pc)| {
                // SAFETY: the prototypes named by native code belong to the running program,
                // whose main prototype (the root of all of them) lives until the program ends.
                let proto = unsafe { &*proto };
                TraceFrame { function: proto.name.to_string(), span: proto.spans[pc] }
            })
            .collect()
    }
}

/// An error site of compiled code, fixed when compiling: the error it raises (`status::OK`
/// where a callee's error propagates through a call) and the frames it records, innermost
/// first: the instruction itself, then each call that inlined it. The lowering leaks each
/// function's sites as one table, which its code indexes, as compiled code is never freed either.
pub struct Site {
    pub code: i64,
    pub frames: Box<[(*const Proto, usize)]>,
}

/// A read of an assigned global in compiled code, for its error when the global changed
/// under it: the global's name and the mirror tag the code was compiled for (leaked, as sites).
pub struct GlobalSite {
    pub name: String,
    pub expected: u64,
}

impl GlobalSite {
    /// The error of a read that found the tag `found` in the global's cell.
    fn message(&self, found: u64) -> String {
        use super::mirror::{TYPE_MASK, type_name};
        let (was, now) = (type_name(self.expected), type_name(found));
        if self.expected & TYPE_MASK == found & TYPE_MASK {
            format!("global '{}' was assigned another {now} while compiled code was reading it", self.name)
        } else {
            format!("global '{}' changed from {was} to {now} while compiled code was reading it", self.name)
        }
    }
}

/// What native code calls when it leaves through error site `site`: records the error (with
/// the details `a` and `b` of an index error) or, for a propagating callee error, only the
/// frames; returns `status`, the status to return, so that native code need not keep it
/// across this call.
pub extern "C" fn mini_jit_site(site: *const Site, status: i64, a: i64, b: i64) -> i64 {
    // SAFETY: `site` is a `Site` the lowering leaked for this code: it lives as long as the
    // program, and nothing writes it after compiling.
    let site = unsafe { &*site };
    CTX.with(|c| {
        let mut c = c.borrow_mut();
        if site.code != status::OK {
            c.error = Some((site.code, a, b));
        }
        c.frames.extend_from_slice(&site.frames);
    });
    status
}

/// The slow path of a loop's safe point in native code, taken when the GIL's attention word
/// has a drop request or Ctrl-C: hands the lock over if this thread holds it (`--keep-gil`, or
/// a call too short to release it, see `adapt.rs`), and stores into `*status`
/// `status::INTERRUPTED` on the program's main thread after Ctrl-C (other threads carry on until
/// the program ends, as interpreted), else `status::OK`. Native code calls it through a
/// trampoline that preserves every register (see engine.rs), which returns nothing, hence the
/// out-parameter.
pub extern "C" fn mini_jit_safe_point(out: *mut i64) {
    let interrupted = crate::gil::native_safe_point();
    let st =
        if interrupted && std::thread::current().name() == Some("main") { status::INTERRUPTED } else { status::OK };
    // SAFETY: `out` is the address of an 8-byte stack slot of the calling native frame, which
    // is live during the call and written by nothing else.
    unsafe { out.write(st) }
}

pub extern "C" fn mini_sin(x: f64) -> f64 {
    x.sin()
}

pub extern "C" fn mini_cos(x: f64) -> f64 {
    x.cos()
}

pub extern "C" fn mini_tan(x: f64) -> f64 {
    x.tan()
}

pub extern "C" fn mini_exp(x: f64) -> f64 {
    x.exp()
}

pub extern "C" fn mini_log(x: f64) -> f64 {
    x.ln()
}

pub extern "C" fn mini_powf(x: f64, y: f64) -> f64 {
    x.powf(y)
}

/// `x // y` for floats; native code has checked `y != 0`.
pub extern "C" fn mini_float_floordiv(x: f64, y: f64) -> f64 {
    num::float_divmod(x, y).map_or(f64::NAN, |(q, _)| q)
}

/// `x % y` for floats; native code has checked `y != 0`.
pub extern "C" fn mini_float_mod(x: f64, y: f64) -> f64 {
    num::float_divmod(x, y).map_or(f64::NAN, |(_, m)| m)
}

/// An int power and whether it overflowed (returned in two registers).
#[repr(C)]
pub struct IntPow {
    pub value: i64,
    pub overflow: i64,
}

/// `x ** y` for ints with `y >= 0`.
pub extern "C" fn mini_int_pow(x: i64, y: i64) -> IntPow {
    match u64::try_from(y).ok().and_then(|e| num::checked_int_pow(x, e)) {
        Some(v) => IntPow { value: v, overflow: 0 },
        None => IntPow { value: 0, overflow: 1 },
    }
}

/// The exact order of an int and a float: -1, 0, 1, or 2 when the float is NaN.
pub extern "C" fn mini_cmp_int_float(i: i64, f: f64) -> i64 {
    match num::int_float_cmp(i, f) {
        Some(std::cmp::Ordering::Less) => -1,
        Some(std::cmp::Ordering::Equal) => 0,
        Some(std::cmp::Ordering::Greater) => 1,
        None => 2,
    }
}

/// `x in a` for an array of `len` elements at `ptr`: `kind` bit 0 says the elements are float
/// bits, bit 1 that `x` is; the comparison is the interpreter's `==` (`values_equal`).
pub extern "C" fn mini_array_has(ptr: *const AtomicU64, len: i64, x: i64, kind: i64) -> i8 {
    let len = usize::try_from(len).unwrap_or(0);
    // SAFETY: native code passes the element pointer and length of an `ArrayObj` it holds as an
    // argument (kept alive by the caller's argument slots for the whole native call); its
    // elements are `AtomicU64`, which other threads may write concurrently, so reading them
    // through shared references with atomic loads is sound.
    let elems = unsafe { std::slice::from_raw_parts(ptr, len) };
    let float_elems = kind & 1 != 0;
    let float_x = kind & 2 != 0;
    let equal = |e: u64| match (float_elems, float_x) {
        (false, false) => e as i64 == x,
        (true, true) => f64::from_bits(e) == f64::from_bits(x as u64),
        (false, true) => num::int_float_cmp(e as i64, f64::from_bits(x as u64)) == Some(std::cmp::Ordering::Equal),
        (true, false) => num::int_float_cmp(x, f64::from_bits(e)) == Some(std::cmp::Ordering::Equal),
    };
    i8::from(elems.iter().any(|e| equal(e.load(Ordering::Relaxed))))
}

/// `random()`: the next float of this thread's generator, the interpreter's (vm/random.rs).
pub extern "C" fn mini_random() -> f64 {
    crate::vm::random::random()
}

/// `randint(a, b)`; native code has checked `a <= b`.
pub extern "C" fn mini_randint(a: i64, b: i64) -> i64 {
    crate::vm::random::randint(a, b)
}

/// `uniform(a, b)`, with ints already converted to floats.
pub extern "C" fn mini_uniform(a: f64, b: f64) -> f64 {
    crate::vm::random::uniform(a, b)
}

/// `gauss(mu, sigma)`, with ints already converted to floats.
pub extern "C" fn mini_gauss(mu: f64, sigma: f64) -> f64 {
    crate::vm::random::gauss(mu, sigma)
}

/// The block plan of a `prange` loop over `range(start, stop, step)` (`step != 0`), and
/// whether to run it through `mini_prange_run`: `plan` holds the number of blocks (none for an
/// empty range) plus `RUN_ON_POOL` when the loop may run in parallel (bit `ELIGIBLE` of
/// `hint`) and is worth it (bit `HEAVY`: its body has a loop or a call, or it is long);
/// `len` is the block length.
#[repr(C)]
pub struct PrangePlan {
    pub plan: i64,
    pub len: i64,
}

/// `PrangePlan::plan`'s flag: call the runner.
pub const RUN_ON_POOL: i64 = 1 << 32;
/// The bits of `mini_prange_plan`'s `hint`: the loop has an outlined block, is worth sharing
/// whatever its length, and its body may draw random numbers.
pub const ELIGIBLE: i64 = 1;
pub const HEAVY: i64 = 2;
pub const DRAWS: i64 = 4;
/// The body has no reductions and draws no random numbers, so its results do not depend on
/// where blocks begin: a heavy loop may then be cut into as many blocks as `MAX_BLOCKS` allows
/// (a row-parallel loop over 200 rows gets 200 blocks, not the plan's 4), for the pool to
/// balance.
pub const FINE: i64 = 8;

/// A loop of fewer iterations than this whose body has no loop and no call runs its blocks in
/// order inline: calling the runner would cost more than sharing the blocks could gain (a
/// loop over 1,000 cheap iterations must not be slower than `range`).
const INLINE_BELOW: u64 = 4096;

/// `PrangePrep`'s plan in native code, counted in the loop's `--stats` as the interpreter
/// counts its runs. For a body that draws no random numbers it also draws the loop's `base`
/// and seeds the generator after the loop from `base + nblocks` at once (the blocks do not
/// touch it), so that native code calls nothing more: a float live across a call is kept in
/// memory, which made a short loop's sum three times slower.
pub extern "C" fn mini_prange_plan(
    start: i64,
    stop: i64,
    step: i64,
    counts: *const PrangeCounts,
    hint: i64,
) -> PrangePlan {
    // SAFETY: native code passes the counters of one of its prototype's `prange` loops; the
    // prototype lives as long as the program, and the counters are atomics.
    let counts = unsafe { &*counts };
    counts.runs.fetch_add(1, Ordering::Relaxed);
    counts.native.fetch_add(1, Ordering::Relaxed);
    let n = crate::parallel::count(start, stop, step);
    if n == 0 {
        return PrangePlan { plan: 0, len: 0 };
    }
    let (len, nblocks) = if hint & FINE != 0 { crate::parallel::fine_plan(n) } else { crate::parallel::plan(n) };
    if hint & DRAWS == 0 {
        let base = crate::vm::random::draw_seed();
        crate::vm::random::seed_lazily(base.wrapping_add(nblocks));
    }
    counts.blocks.fetch_add(nblocks, Ordering::Relaxed);
    counts.iterations.fetch_add(n, Ordering::Relaxed);
    let pool = hint & ELIGIBLE != 0 && (hint & HEAVY != 0 || n >= INLINE_BELOW);
    if hint & ELIGIBLE != 0 && !pool {
        counts.sequential.fetch_or(crate::bytecode::SEQUENTIAL_SHORT, Ordering::Relaxed);
    }
    PrangePlan { plan: nblocks as i64 | if pool { RUN_ON_POOL } else { 0 }, len: len as i64 }
}

/// Records in a loop's counters why a native run ran its blocks in order (`SEQUENTIAL_*`).
pub extern "C" fn mini_prange_sequential(counts: *const PrangeCounts, why: i64) {
    // SAFETY: as in `mini_prange_plan`: the counters of a loop of a live prototype.
    let counts = unsafe { &*counts };
    counts.sequential.fetch_or(why as u64, Ordering::Relaxed);
}

/// A `prange` loop's random base: one draw of this thread's generator, as the interpreter's
/// `PrangePrep` draws it.
pub extern "C" fn mini_draw_seed() -> i64 {
    crate::vm::random::draw_seed() as i64
}

/// This thread's generator becomes one seeded from `seed` at its first draw (a block's, or the
/// one after a `prange` loop), as the interpreter's `PrangeBlock` and `PrangeNext` do.
pub extern "C" fn mini_seed_pending(seed: i64) {
    crate::vm::random::seed_lazily(seed as u64)
}
