//! Random numbers (lang-spec/random.md): `seed`, `random`, `randint`, `uniform`, `gauss`,
//! `shuffle` and `choice`, drawn from a per-thread xoshiro256** generator
//! (<https://prng.di.unimi.it/>) that the interpreter and compiled code share (the JIT's runtime
//! helpers call [`random`], [`randint`], [`uniform`] and [`gauss`]), so a seeded program draws
//! the same numbers with and without `--jit`.
//!
//! Every generator is seeded by SplitMix64 from one 64-bit value: `seed(n)`'s `n`, a draw of the
//! parent's generator at `spawn` ([`draw_seed`], [`seed_thread`]), `base + i` for item `i` of a
//! `pmap` whose call drew `base` ([`ItemGenerator`]), or 8 bytes of `/dev/urandom` for a
//! generator used before any of those (the main thread's, unless the program calls `seed`).
//!
//! What it may touch without the GIL: only its thread-local state (compiled code draws without
//! the lock); the builtins that read lists run under the GIL.

use super::Fail;
use crate::builtin::Builtin;
use crate::gil::Gil;
use crate::value::Value;
use std::cell::Cell;

type BResult = Result<Value, Fail>;

thread_local! {
    /// This thread's xoshiro256** state; all zero (a state xoshiro never reaches, and SplitMix64
    /// never produces) until the generator is first seeded. Four cells rather than one cell of
    /// an array: each word is loaded and stored on its own, so a draw's loads are forwarded from
    /// the previous draw's stores (a 16-byte load of two 8-byte stores stalls: a compiled loop
    /// of `t += random()` took 14.5 ns per iteration with one array cell, 5.6 ns with four).
    static STATE: [Cell<u64>; 4] = const { [Cell::new(0), Cell::new(0), Cell::new(0), Cell::new(0)] };

    /// The seed of a `pmap` item's generator, until the item first draws: the state is zero
    /// meanwhile, so the draw seeds it from here (an item that draws nothing costs no seeding).
    static PENDING: Cell<Option<u64>> = const { Cell::new(None) };
}

/// This thread's state, read.
fn get_state() -> [u64; 4] {
    STATE.with(|s| [s[0].get(), s[1].get(), s[2].get(), s[3].get()])
}

/// Sets this thread's state.
fn set_state(v: [u64; 4]) {
    STATE.with(|s| {
        for (cell, w) in s.iter().zip(v) {
            cell.set(w);
        }
    })
}

/// One step of SplitMix64 (<https://prng.di.unimi.it/splitmix64.c>): advances `x`, returns a word.
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The xoshiro256** state seeded from `n`: four successive SplitMix64 outputs starting at `n`.
/// They come from four different inputs of a bijection, so they are never all zero.
fn seeded(n: u64) -> [u64; 4] {
    let mut x = n;
    [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)]
}

/// One step of xoshiro256** (<https://prng.di.unimi.it/xoshiro256starstar.c>).
#[inline(always)]
fn step(s: &mut [u64; 4]) -> u64 {
    let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    result
}

/// A state seeded from the operating system: 8 bytes of `/dev/urandom`, or, where it cannot be
/// read, the standard library's per-process random hash keys mixed with the clock.
#[cold]
fn os_state() -> [u64; 4] {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    let n = match read {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            h.write_u128(now.map_or(0, |d| d.as_nanos()));
            h.finish()
        }
    };
    seeded(n)
}

/// The state of a generator about to draw for the first time: a pending `pmap` item's, else
/// one seeded from the system.
#[cold]
fn first_state() -> [u64; 4] {
    match PENDING.take() {
        Some(n) => seeded(n),
        None => os_state(),
    }
}

/// The next 64 bits of this thread's generator (seeding it first if it is not: from a pending
/// `pmap` item's seed, else from the system).
#[inline(always)]
pub fn next_u64() -> u64 {
    STATE.with(|c| {
        let mut s = [c[0].get(), c[1].get(), c[2].get(), c[3].get()];
        if s[0] | s[1] | s[2] | s[3] == 0 {
            s = first_state();
        }
        let r = step(&mut s);
        c[0].set(s[0]);
        c[1].set(s[1]);
        c[2].set(s[2]);
        c[3].set(s[3]);
        r
    })
}

/// Seeds this thread's generator from `n` (`seed(n)`, and a spawned thread's first act).
pub fn seed_thread(n: u64) {
    PENDING.set(None);
    set_state(seeded(n));
}

/// This thread's generator becomes one seeded from `n`, lazily at its first draw (see
/// `PENDING`): a `prange` block's, and the generator after a `prange` loop.
pub fn seed_lazily(n: u64) {
    PENDING.set(Some(n));
    set_state([0; 4]);
}

/// The seed a thread started now gets: one draw of the starting thread's generator.
pub fn draw_seed() -> u64 {
    next_u64()
}

/// While alive, this thread's generator is that of item `i` of a `pmap` whose call drew `base`:
/// one seeded from `base + i` (wrapping), lazily at its first draw (see `PENDING`). Dropping it
/// (also when unwinding) puts the thread's own generator back.
pub struct ItemGenerator {
    own: [u64; 4],
    pending: Option<u64>,
}

impl ItemGenerator {
    /// Switches this thread to item `i`'s generator.
    #[inline]
    pub fn enter(base: u64, i: usize) -> ItemGenerator {
        let own = get_state();
        let pending = PENDING.replace(Some(base.wrapping_add(i as u64)));
        set_state([0; 4]);
        ItemGenerator { own, pending }
    }
}

impl Drop for ItemGenerator {
    #[inline]
    fn drop(&mut self) {
        set_state(self.own);
        PENDING.set(self.pending);
    }
}

/// `random()`: the top 53 bits of a draw, times 2^-53: a float in [0, 1).
#[inline]
pub fn random() -> f64 {
    (next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform int in `[0, n)` for `n > 0`, by Lemire's multiply-and-reject method
/// (<https://arxiv.org/abs/1805.10941>): unbiased, one draw unless rejected.
fn below(n: u64) -> u64 {
    let mut m = u128::from(next_u64()) * u128::from(n);
    if (m as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = u128::from(next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as u64
}

/// `randint(a, b)` for `a <= b`: a uniform int in `[a, b]`. When the range holds all 2^64 ints,
/// a draw is the result as it is.
#[inline]
pub fn randint(a: i64, b: i64) -> i64 {
    let span = (b as u64).wrapping_sub(a as u64).wrapping_add(1);
    let offset = if span == 0 { next_u64() } else { below(span) };
    a.wrapping_add(offset as i64)
}

/// `uniform(a, b)`: `a + (b - a) * random()`, as Python computes it.
#[inline]
pub fn uniform(a: f64, b: f64) -> f64 {
    a + (b - a) * random()
}

/// `gauss(mu, sigma)` by Box–Muller with two draws per call and nothing cached:
/// `mu + sigma * sqrt(-2 ln(1 - u1)) * cos(2 pi u2)`.
#[inline]
pub fn gauss(mu: f64, sigma: f64) -> f64 {
    let u1 = random();
    let u2 = random();
    let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    mu + sigma * z
}

/// The message of `randint(a, b)` with `a > b`, raised by the interpreter and compiled code.
pub fn empty_range(a: i64, b: i64) -> String {
    format!("randint range is empty: a = {a} is greater than b = {b}")
}

/// Calls random-number builtin `b` (the builtins of this module, listed in `vm::builtins`).
pub fn call(b: Builtin, args: &[Value], gil: Gil) -> BResult {
    use Builtin as B;
    match b {
        B::Seed => seed(args),
        B::Random => arity(0, args).map(|()| Value::Float(random())),
        B::Randint => {
            arity(2, args)?;
            let (a, b) = (int_arg("randint", "a", &args[0])?, int_arg("randint", "b", &args[1])?);
            if a > b {
                return Err(empty_range(a, b).into());
            }
            Ok(Value::Int(randint(a, b)))
        }
        B::Uniform => {
            arity(2, args)?;
            Ok(Value::Float(uniform(number("uniform", "a", &args[0])?, number("uniform", "b", &args[1])?)))
        }
        B::Gauss => {
            arity(2, args)?;
            Ok(Value::Float(gauss(number("gauss", "mu", &args[0])?, number("gauss", "sigma", &args[1])?)))
        }
        B::Shuffle => shuffle(args, gil),
        B::Choice => choice(args, gil),
        other => Err(format!("internal error: {} is not a random-number builtin", other.name()).into()),
    }
}

fn arity(n: usize, args: &[Value]) -> Result<(), Fail> {
    if args.len() != n {
        let s = if n == 1 { "" } else { "s" };
        return Err(format!("expected {n} argument{s}, got {}", args.len()).into());
    }
    Ok(())
}

/// Argument `name` of function `f`, which must be an int.
fn int_arg(f: &str, name: &str, v: &Value) -> Result<i64, Fail> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!("{f} {name} must be an int, not {}", other.type_name()).into()),
    }
}

/// Argument `name` of function `f`, which must be a number (an int becomes a float).
fn number(f: &str, name: &str, v: &Value) -> Result<f64, Fail> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(x) => Ok(*x),
        other => Err(format!("{f} {name} must be a number, not {}", other.type_name()).into()),
    }
}

/// `seed(n)`: seeds the calling thread's generator from the int `n` (its 64 bits).
fn seed(args: &[Value]) -> BResult {
    arity(1, args)?;
    seed_thread(int_arg("seed", "argument", &args[0])? as u64);
    Ok(Value::Nil)
}

/// `shuffle(l)`: Fisher–Yates in place, from the last position down, each swap partner drawn
/// by the same unbiased bounded draw as `randint`.
fn shuffle(args: &[Value], gil: Gil) -> BResult {
    arity(1, args)?;
    match &args[0] {
        // a permutation stores no new value: a list of numbers stays untracked
        Value::List(l) => fisher_yates(&mut l.borrow_mut_to_store(&Value::Nil, gil), |v, i, j| v.swap(i, j)),
        Value::Array(a) => {
            super::ndarray::one_dim(a, "shuffle")?;
            let data = &a.data;
            let swap = |_: &mut (), i: usize, j: usize| {
                let x = data[i].load(std::sync::atomic::Ordering::Relaxed);
                let y = data[j].swap(x, std::sync::atomic::Ordering::Relaxed);
                data[i].store(y, std::sync::atomic::Ordering::Relaxed);
            };
            shuffle_n(&mut (), a.len(), swap);
        }
        other => return Err(format!("shuffle expects a list or array, not {}", other.type_name()).into()),
    }
    Ok(Value::Nil)
}

/// Fisher–Yates over a vector.
fn fisher_yates(v: &mut Vec<Value>, swap: impl FnMut(&mut Vec<Value>, usize, usize)) {
    let n = v.len();
    shuffle_n(v, n, swap);
}

/// Fisher–Yates over `n` positions of `items`: for `i` from `n - 1` down to 1, swaps `i` with
/// a uniform `j` in `[0, i]`.
fn shuffle_n<T: ?Sized>(items: &mut T, n: usize, mut swap: impl FnMut(&mut T, usize, usize)) {
    for i in (1..n).rev() {
        let j = below(i as u64 + 1) as usize;
        swap(items, i, j);
    }
}

/// `choice(l)`: the element at a uniform index of a non-empty list, array, string (a
/// one-character string) or range.
fn choice(args: &[Value], gil: Gil) -> BResult {
    arity(1, args)?;
    let v = &args[0];
    let n: u64 = match v {
        Value::List(l) => l.borrow(gil).len() as u64,
        Value::Array(a) => {
            super::ndarray::one_dim(a, "choose from")?;
            a.len() as u64
        }
        Value::Str(s) => s.chars as u64,
        // at most 2^64 - 1 ints
        Value::Range(r) => r.exact_len() as u64,
        other => {
            let t = other.type_name();
            return Err(format!("choice expects a list, array, string or range, not {t}").into());
        }
    };
    if n == 0 {
        return Err(format!("choice from an empty {}", v.type_name()).into());
    }
    let i = below(n);
    Ok(match v {
        Value::List(l) => l.borrow(gil)[i as usize].clone(),
        Value::Array(a) => a.get(i as usize),
        Value::Str(s) => Value::str(s.char_at(i as usize).unwrap_or_default()),
        Value::Range(r) => Value::Int(r.get(i as i64)),
        _ => Value::Nil,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first outputs of xoshiro256** seeded by SplitMix64 from 0 agree with the reference C
    /// code's (computed by tests/random/reference.py).
    #[test]
    fn seeded_from_zero() {
        let mut s = seeded(0);
        assert_eq!(s[0], 0xe220_a839_7b1d_cdaf);
        assert_eq!(step(&mut s), 0x99ec_5f36_cb75_f2b4);
        assert_eq!(step(&mut s), 0xbf6e_1f78_4956_452a);
    }

    /// `below` never returns `n` or more, also for the largest bounds.
    #[test]
    fn below_in_range() {
        seed_thread(5);
        for n in [1u64, 2, 3, 7, u64::MAX, u64::MAX / 2 + 1] {
            for _ in 0..1000 {
                assert!(below(n) < n);
            }
        }
        assert_eq!(randint(i64::MIN, i64::MIN), i64::MIN);
    }
}
